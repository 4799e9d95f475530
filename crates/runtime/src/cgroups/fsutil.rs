//! Small helpers for cgroup control files: errors carry the file's path.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// How many times making a cgroup starts again when a concurrent removal took its parent.
pub const MKDIR_RACE_TRIES: u32 = 100;

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
