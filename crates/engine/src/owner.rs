//! Who is responsible for a running container: its monitor, or the `lbox run` in the foreground.
//! The owner holds an exclusive flock on run/owners/<id>.lock for as long as it looks after the
//! container; the kernel drops the lock when the owner dies, however it dies, so any command can
//! tell a live owner from a dead one without trusting pids.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::FlockOperation;

use crate::error::{Context, Result};

pub struct OwnerLock {
    _file: File,
}

fn open(path: &Path) -> Result<File> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .ctx(|| format!("open {}", path.display()))
}

/// Take ownership; Ok(None) when someone else owns the container.
pub fn try_acquire(path: &Path) -> Result<Option<OwnerLock>> {
    let f = open(path)?;
    match rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(OwnerLock { _file: f })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(e).ctx(|| format!("lock {}", path.display())),
    }
}

/// Wait for the lock (a short critical section shared by processes, e.g. a network's hosts files).
pub fn acquire(path: &Path) -> Result<OwnerLock> {
    let f = open(path)?;
    rustix::fs::flock(&f, FlockOperation::LockExclusive).ctx(|| format!("lock {}", path.display()))?;
    Ok(OwnerLock { _file: f })
}

/// Is there a live owner? (Takes and drops the lock when there is none.)
pub fn is_owned(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    matches!(try_acquire(path), Ok(None))
}

pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}
