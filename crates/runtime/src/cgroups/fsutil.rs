//! Small helpers for cgroup control files: errors carry the file's path.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Make the cgroup directory `dir` with `make` (which also makes what it needs above it), again
/// while that fails because a directory above vanished: a parent shared with other containers is
/// removed by the last of them to go, maybe between making that parent and making ours.
pub fn make_dir(dir: &Path, mut make: impl FnMut() -> std::io::Result<()>) -> Result<()> {
    let mut tries = 0;
    loop {
        match make() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 100 => tries += 1,
            Err(e) => {
                return Err(Error::Cgroup {
                    path: dir.display().to_string(),
                    msg: format!("cannot create: {e}"),
                })
            }
        }
    }
}

pub fn write_file(path: &Path, value: &str) -> Result<()> {
    let res = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|e| Error::Cgroup {
        path: path.display().to_string(),
        msg: format!("write {value:?}: {e}"),
    })
}

pub fn read_trim(path: &Path) -> Result<String> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::Cgroup {
            path: path.display().to_string(),
            msg: format!("read: {e}"),
        })
}

pub fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Parse "key value" lines (memory.stat, cpu.stat, cpuacct.stat).
pub fn read_kv(path: &Path) -> std::collections::BTreeMap<String, u64> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Poll until `done()` holds (freezer transitions are asynchronous), for at most 10 s.
pub fn wait_until(dir: &Path, what: &str, mut done: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if done()? {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::Cgroup {
                path: dir.display().to_string(),
                msg: format!("did not reach {what} in 10s"),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
