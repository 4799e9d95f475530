//! `lbox build`: an app.lbox, Dockerfile or boxfile.toml into an image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use image::manifest::Platform;

use super::images::{self, PullArgs};
use super::TlsArgs;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The build context: the directory whose files COPY can read.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// Name (and tag) for the image; may be given several times.
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub tags: Vec<String>,
    /// The build file (default: app.lbox, Dockerfile, Containerfile or boxfile.toml in the context).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A build argument (ARG) value: NAME=VALUE, or NAME to take it from the environment.
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_args: Vec<String>,
    /// A label for the image: KEY=VALUE.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Run every step, using no cached result.
    #[arg(long)]
    pub no_cache: bool,
    /// Pull base images even when they are present (always, true), or never (never, false).
    // `--pull` alone means always; a policy is given as --pull=POLICY, so `--pull .` keeps `.`
    // as the context.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "always", value_name = "POLICY")]
    pub pull: Option<String>,
    /// Build up to this stage of a multi-stage Dockerfile.
    #[arg(long)]
    pub target: Option<String>,
    /// The platform to build for (only this machine's is supported).
    #[arg(long)]
    pub platform: Option<String>,
    /// Network for RUN steps: bridge (default), none, host or a network's name.
    #[arg(long, default_value = "bridge")]
    pub network: String,
    /// Write the image ID to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Print only the image ID (and a failing step's output).
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

fn parse_kv(flag: &str, s: &str, from_env: bool) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        None if from_env && !s.is_empty() => Ok((s.to_string(), std::env::var(s).unwrap_or_default())),
        _ => bail!("invalid {flag} {s:?}: expected NAME=VALUE"),
    }
}

pub fn build(root: &Path, a: BuildArgs) -> Result<i32> {
    if let Some(p) = &a.platform {
        let want = Platform::parse(p)?;
        let host = Platform::host();
        if !host.matches(&want) && !want.matches(&host) {
            bail!("--platform {p}: only this machine's platform ({host}) can be built");
        }
    }
    let always_pull = match a.pull.as_deref() {
        None | Some("missing") | Some("false") | Some("never") => false,
        Some("always") | Some("true") => true,
        Some(other) => bail!("invalid --pull {other:?}: use always, missing or never"),
    };
    let never_pull = a.pull.as_deref() == Some("never");
    let mut tags = Vec::new();
    for t in &a.tags {
        let r: image::Reference = t.parse().with_context(|| format!("invalid tag {t:?}"))?;
        if r.digest.is_some() {
            bail!("{t}: a tag cannot carry a digest");
        }
        tags.push(r.tagged().with_context(|| format!("invalid tag {t:?}"))?);
    }
    let mut build_args = BTreeMap::new();
    for s in &a.build_args {
        let (k, v) = parse_kv("--build-arg", s, true)?;
        build_args.insert(k, v);
    }
    let labels = a
        .labels
        .iter()
        .map(|s| parse_kv("--label", s, false))
        .collect::<Result<Vec<_>>>()?;
    if !a.context.is_dir() {
        bail!("build context {}: not a directory", a.context.display());
    }
    let context = a
        .context
        .canonicalize()
        .with_context(|| format!("build context {}", a.context.display()))?;
    let (_, plan) = build::frontend::load(&context, a.file.as_deref())?;

    let e = super::containers::open(root)?;
    let store = e.images()?;
    let resolve = |name: &str, always: bool| -> build::Result<image::Digest> {
        if !always {
            match store.find(name) {
                Ok(img) => return Ok(img.id),
                Err(image::Error::ImageNotFound(_)) if !never_pull => {}
                Err(err) => return Err(err.into()),
            }
        }
        let r = images::pull_image(
            root,
            &PullArgs {
                image: name.to_string(),
                platform: None,
                quiet: a.quiet,
                tls: a.tls.clone(),
            },
        )
        .map_err(|e| build::Error::Invalid(format!("{e:#}")))?;
        Ok(store.find(&r.to_string())?.id)
    };
    let opts = build::exec::Options {
        context,
        tags: tags.clone(),
        build_args,
        labels,
        no_cache: a.no_cache,
        pull: always_pull,
        target: a.target.clone(),
        network: a.network.clone(),
        quiet: a.quiet,
        resolve_image: &resolve,
    };
    let mut out = std::io::stdout();
    let result = build::exec::Builder::new(&e, &plan, &opts, &mut out).and_then(|mut b| b.build());
    let id = match result {
        Ok(id) => id,
        Err(build::Error::StepFailed { loc, text, code }) => {
            eprintln!("lbox: {loc}: {text:?} failed with exit code {code}");
            return Ok(if code > 0 && code < 256 { code } else { 1 });
        }
        Err(err) => return Err(err.into()),
    };
    if let Some(f) = &a.iidfile {
        std::fs::write(f, id.to_string()).with_context(|| format!("write {}", f.display()))?;
    }
    if a.quiet {
        println!("{id}");
    } else {
        println!("Successfully built {}", id.short());
        for t in &tags {
            let shown = t
                .parse::<image::Reference>()
                .map(|r| r.familiar())
                .unwrap_or_else(|_| t.clone());
            println!("Successfully tagged {shown}");
        }
    }
    Ok(0)
}
