//! `cp`: files between a container and the host (`CONTAINER:PATH` on one side).

use std::path::Path;

use anyhow::{bail, Result};
use clap::Args;

use super::containers::open;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// CONTAINER:SRC or a host path.
    pub src: String,
    /// CONTAINER:DEST or a host path.
    pub dest: String,
}

/// `name:/path` names a container's path; a host path with a colon must start with / or ./.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':').filter(|(c, _)| !c.is_empty() && !c.contains('/'))
}

pub fn cp(root: &Path, a: CpArgs) -> Result<i32> {
    let e = open(root)?;
    match (split(&a.src), split(&a.dest)) {
        (Some((c, p)), None) => {
            let ct = e.find(c)?;
            let p = if p.is_empty() { "/" } else { p };
            engine::copy::from_container(&e, &ct, p, Path::new(&a.dest))?;
        }
        (None, Some((c, p))) => {
            let ct = e.find(c)?;
            if !p.starts_with('/') {
                bail!("invalid destination {:?}: the container path must be absolute", a.dest);
            }
            engine::copy::into_container(&e, &ct, Path::new(&a.src), p)?;
        }
        (Some(_), Some(_)) => bail!("copying between two containers is not supported; copy through the host"),
        (None, None) => bail!("one of {:?} and {:?} must be CONTAINER:PATH", a.src, a.dest),
    }
    Ok(0)
}
