//! RUN: the command runs in a real container of the engine (same runtime, networking and
//! `/etc/hosts` as `lbox run`) on the image made by the previous step; the container's upper
//! directory, once it has exited, is the new layer.

use std::path::Path;

use engine::create::CreateRequest;
use engine::Engine;
use image::manifest::ImageConfig;

use crate::error::{Error, Result};

pub struct RunStep<'a> {
    pub image_id: &'a str,
    pub config: &'a ImageConfig,
    pub argv: Vec<String>,
    /// Build arguments, visible to the command as environment variables (ENV wins).
    pub args: Vec<(String, String)>,
    pub network: String,
    /// Keep the output to show it only if the command fails (`build -q`).
    pub quiet: bool,
}

/// Run the command; on success the container's upper directory is moved to `upper_out` (which
/// must not exist, on the same filesystem). Returns the command's exit code.
pub fn run(e: &Engine, s: &RunStep, upper_out: &Path) -> Result<i32> {
    // The image's volumes and health check are for containers of the finished image, not for
    // the build's: a VOLUME directory stays part of the layer, as with BuildKit.
    let mut cfg = s.config.clone();
    if let Some(rc) = cfg.config.as_mut() {
        rc.volumes = None;
        rc.other.remove("Healthcheck");
    }
    let env_has = |k: &str| {
        cfg.config
            .as_ref()
            .and_then(|c| c.env.as_ref())
            .is_some_and(|env| crate::meta::env_get(env, k).is_some())
    };
    let req = CreateRequest {
        image: s.image_id.to_string(),
        command: s.argv.clone(),
        // RUN ignores the image's ENTRYPOINT.
        entrypoint: Some(String::new()),
        env: s
            .args
            .iter()
            .filter(|(k, _)| !env_has(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        no_healthcheck: true,
        labels: vec![format!("{}=true", engine::create::BUILD_STEP_LABEL)],
        network: Some(s.network.clone()),
        ..Default::default()
    };
    let config = engine::create::build_config(&req, s.image_id, &cfg)?;
    let ct = engine::create::create(e, None, config)?;
    let code = engine::lifecycle::run_logged(e, &ct, !s.quiet);
    if s.quiet && !matches!(code, Ok(0)) {
        replay_log(e, &ct.id);
    }
    let moved = match &code {
        Ok(0) => {
            let upper = e.paths.container(&ct.id).join("upper");
            std::fs::rename(&upper, upper_out).map_err(Error::io(format!("move {}", upper.display())))
        }
        _ => Ok(()),
    };
    let ct = e.find(&ct.id)?;
    let removed = engine::remove::discard(e, &ct, true);
    let code = code?;
    moved?;
    removed?;
    Ok(code)
}

/// A quiet step failed: its output goes to stderr after all, to say why.
fn replay_log(e: &Engine, id: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for entry in engine::logs::read_all(&e.paths.log(id)) {
        let _ = err.write_all(entry.log.as_bytes());
    }
}
