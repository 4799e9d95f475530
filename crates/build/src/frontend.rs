//! Which build file, and which front end reads it: `-f FILE`, else the first of app.lbox,
//! Dockerfile, Containerfile and boxfile.toml in the context. `*.lbox` is LockBox's syntax,
//! `*.toml` PyBox's, anything else a Dockerfile.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::plan::Plan;

const DEFAULTS: [&str; 4] = ["app.lbox", "Dockerfile", "Containerfile", "boxfile.toml"];

pub fn find(context: &Path, file: Option<&Path>) -> Result<PathBuf> {
    if let Some(f) = file {
        return Ok(f.to_path_buf());
    }
    DEFAULTS
        .iter()
        .map(|n| context.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "no build file in {}: add an app.lbox, Dockerfile or boxfile.toml, or name one with -f",
                context.display()
            ))
        })
}

/// Parse `text` (the content of `path`) with the front end its name calls for.
pub fn parse(path: &Path, text: &str) -> Result<Plan> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shown = path.display().to_string();
    if name.ends_with(".lbox") {
        crate::lboxfile::parse(text, &shown)
    } else if name.ends_with(".toml") {
        crate::boxfile::parse(text, &shown)
    } else {
        crate::dockerfile::parse(text, &shown)
    }
}

pub fn load(context: &Path, file: Option<&Path>) -> Result<(PathBuf, Plan)> {
    let path = find(context, file)?;
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(Error::io("read the build file from stdin"))?;
        s
    } else {
        std::fs::read_to_string(&path).map_err(Error::io(format!("read {}", path.display())))?
    };
    let plan = parse(&path, &text)?;
    Ok((path, plan))
}
