//! `cp`: files between a container and the host (`CONTAINER:PATH` on one side); `export`: a
//! container's whole filesystem as a tar archive.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
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

#[derive(Args, Debug)]
pub struct ExportArgs {
    pub container: String,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn export(root: &Path, a: ExportArgs) -> Result<i32> {
    let e = open(root)?;
    let ct = e.find(&a.container)?;
    match &a.output {
        Some(p) => {
            // Into a temporary file renamed at the end: a failed export leaves no partial archive.
            let tmp = p.with_extension("lbox-partial");
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?,
            );
            let r = engine::export::export(&e, &ct, &mut f)
                .map_err(anyhow::Error::from)
                .and_then(|()| f.flush().with_context(|| format!("write {}", tmp.display())));
            drop(f);
            if let Err(err) = r {
                let _ = std::fs::remove_file(&tmp);
                return Err(err);
            }
            std::fs::rename(&tmp, p).with_context(|| format!("write {}", p.display()))?;
        }
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            bail!("refusing to write an archive to a terminal: use -o FILE or redirect standard output")
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            engine::export::export(&e, &ct, &mut out)?;
            out.flush().context("write standard output")?;
        }
    }
    Ok(0)
}
