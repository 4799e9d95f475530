use std::fs::File;
use std::path::Path;

use rustix::fs::FlockOperation;

use crate::error::{Error, Result};

/// An exclusive flock on the store, released on drop (or when the process dies).
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    pub fn acquire(path: &Path) -> Result<StoreLock> {
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(Error::path(path))?;
        loop {
            match rustix::fs::flock(&f, FlockOperation::LockExclusive) {
                Err(rustix::io::Errno::INTR) => continue,
                r => r.map_err(|e| Error::Path {
                    path: path.to_path_buf(),
                    source: e.into(),
                })?,
            }
            return Ok(StoreLock { _file: f });
        }
    }
}
