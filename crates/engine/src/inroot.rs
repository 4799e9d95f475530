//! Reading and making paths inside a container's root filesystem without ever following a symlink
//! out of it: every lookup is openat2(RESOLVE_IN_ROOT), so `/etc/passwd -> /host/file` resolves
//! inside the rootfs, as it would for the container.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags};

use crate::error::{Context, Result};

pub fn open_root(rootfs: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open container root {}", rootfs.display()))
}

fn rel(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

/// Read a file of the container's filesystem; Ok(None) when it does not exist.
pub fn read(root: &OwnedFd, path: &Path) -> Result<Option<String>> {
    let r = runtime::inroot::open_in(root, path, OFlags::RDONLY);
    let fd = match r {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("open {} in the container", path.display())),
    };
    let mut s = String::new();
    std::fs::File::from(fd)
        .read_to_string(&mut s)
        .ctx(|| format!("read {} in the container", path.display()))?;
    Ok(Some(s))
}

/// mkdir -p inside the container (for the working directory and mount targets), mode 0755.
pub fn mkdir_all(root: &OwnedFd, path: &Path) -> Result<()> {
    let mut cur = rustix::fs::openat(
        root,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| "open container root".into())?;
    for c in rel(path).components() {
        let Component::Normal(name) = c else { continue };
        match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e).ctx(|| format!("create {} in the container", path.display())),
        }
        // Resolve the component in the container's root, so a symlinked directory is followed
        // the way the container would see it, never out of it.
        let so_far = {
            let mut p = std::path::PathBuf::new();
            for d in rel(path).components() {
                p.push(d);
                if d == c {
                    break;
                }
            }
            p
        };
        cur = runtime::inroot::open_in(root, &so_far, OFlags::PATH | OFlags::DIRECTORY)
            .ctx(|| format!("open {} in the container", so_far.display()))?;
    }
    Ok(())
}
