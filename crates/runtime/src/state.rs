//! Per-container state on disk: `<root>/<id>/state.json` plus the `exec.fifo` that holds a created
//! container's init until `start`. Status is derived from the kernel (is the pid alive, is it the same
//! process, is the fifo still there, is the cgroup frozen), never trusted from the file.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::runtime::{Hooks, LinuxSeccomp, Process, Spec};
use serde::{Deserialize, Serialize};

use crate::cgroups::CgroupPaths;
use crate::error::{Context, Error, Result};

pub const FIFO: &str = "exec.fifo";
const STATE_FILE: &str = "state.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// What `lbox-runc` remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Start time of `pid` (field 22 of /proc/pid/stat) so that a recycled pid is not mistaken for ours.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroup: CgroupPaths,
    /// The spec's process, the base that `exec` starts from (as runc does).
    pub process: Option<Process>,
    pub hooks: Option<Hooks>,
    /// The container's seccomp profile: `exec`'d processes get it too.
    #[serde(default)]
    pub seccomp: Option<LinuxSeccomp>,
}

/// The OCI state document printed by `state`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
    pub owner: &'a str,
}

pub const OCI_VERSION: &str = "1.2.0";

impl Record {
    pub fn oci_state(&self, status: Status) -> OciState<'_> {
        OciState {
            oci_version: OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped { 0 } else { self.pid },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: &self.owner,
        }
    }

    pub fn from_spec(id: &str, bundle: &Path, rootfs: &Path, spec: &Spec, cgroup: CgroupPaths) -> Self {
        Record {
            id: id.to_string(),
            pid: 0,
            pid_start: 0,
            bundle: bundle.to_path_buf(),
            rootfs: rootfs.to_path_buf(),
            created: rfc3339_now(),
            owner: String::new(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            cgroup,
            process: spec.process().clone(),
            hooks: spec.hooks().clone(),
            seccomp: spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
        }
    }
}

/// The directory that holds every container's state (`--root`).
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
}

pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Store { root: root.into() }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Compiled seccomp programs by profile hash ('@' keeps the name out of the id space).
    pub fn seccomp_cache(&self) -> PathBuf {
        self.root.join("seccomp@cache")
    }

    /// Claim the id: mkdir is atomic, so two concurrent creates of one id cannot both win.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        fs::create_dir_all(&self.root).ctx(|| format!("create state root {}", self.root.display()))?;
        let dir = self.dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::AlreadyExists(id.into())),
            Err(e) => Err(Error::Io {
                what: format!("create state directory {}", dir.display()),
                source: e,
            }),
        }
    }

    /// Serialise lifecycle commands on one container (an exclusive flock on its state directory,
    /// released when the guard drops; a lock file in it would be one more inode to make and
    /// delete per container, which this host's ext4 makes costly). A missing container is not an
    /// error here: the command's own load says so.
    pub fn lock(&self, id: &str) -> Result<Option<fs::File>> {
        validate_id(id)?;
        let path = self.dir(id);
        let f = match rustix::fs::open(
            &path,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fs::File::from(fd),
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => {
                return Err(Error::Io {
                    what: format!("open {}", path.display()),
                    source: e.into(),
                })
            }
        };
        loop {
            match rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive) {
                Ok(()) => return Ok(Some(f)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::Sys {
                        what: format!("lock container {id}"),
                        errno: nix::Error::from_raw(e.raw_os_error()),
                    })
                }
            }
        }
    }

    pub fn save(&self, rec: &Record) -> Result<()> {
        let dir = self.dir(&rec.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(rec).map_err(|e| Error::Invalid(format!("encode state: {e}")))?;
        let mut f = fs::File::create(&tmp).ctx(|| format!("write {}", tmp.display()))?;
        f.write_all(&data).ctx(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, dir.join(STATE_FILE)).ctx(|| format!("write state of {}", rec.id))
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        validate_id(id)?;
        let path = self.dir(id).join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotFound(id.into())),
            Err(e) => {
                return Err(Error::Io {
                    what: format!("read {}", path.display()),
                    source: e,
                })
            }
        };
        serde_json::from_slice(&data).map_err(|e| {
            Error::Invalid(format!(
                "state of container {id} is corrupt ({e}); remove it with: lbox-runc delete --force {id}"
            ))
        })
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                what: format!("remove {}", dir.display()),
                source: e,
            }),
        }
    }

    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.root) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => {
                return Err(Error::Io {
                    what: format!("list {}", self.root.display()),
                    source: e,
                })
            }
        };
        let mut ids: Vec<String> = rd
            .flatten()
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The container's status, read from the kernel.
    pub fn status(&self, rec: &Record) -> Status {
        if rec.pid <= 0 || !pid_alive(rec.pid, rec.pid_start) {
            return Status::Stopped;
        }
        if self.dir(&rec.id).join(FIFO).exists() {
            return Status::Created;
        }
        if rec.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }
}

/// Field 22 (starttime) and field 3 (state) of /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split(' ');
    let state = it.next()?.chars().next()?;
    let start = it.nth(18)?.parse().ok()?;
    Some((state, start))
}

pub fn pid_alive(pid: i32, start: u64) -> bool {
    match proc_stat(pid) {
        Some((state, st)) => state != 'Z' && state != 'X' && (start == 0 || st == start),
        None => false,
    }
}

pub fn rfc3339_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

/// Format seconds since the epoch as RFC 3339 UTC (days-to-civil after Howard Hinnant).
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_376_096, 0), "2026-11-22T19:34:56.000000000Z");
    }

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn own_pid_is_alive_and_stat_parses() {
        let me = std::process::id() as i32;
        let (state, start) = proc_stat(me).unwrap();
        assert!(state == 'R' || state == 'S');
        assert!(pid_alive(me, start));
        assert!(!pid_alive(me, start + 1));
    }

    #[test]
    fn claim_is_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::new(t.path());
        s.claim("one").unwrap();
        assert!(matches!(s.claim("one"), Err(Error::AlreadyExists(_))));
        assert!(matches!(s.load("nope"), Err(Error::NotFound(_))));
    }
}
