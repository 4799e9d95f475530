//! Cgroups, v1 and v2, chosen once at runtime by what is mounted on /sys/fs/cgroup.
//!
//! A container's cgroup is a set of directories (one per v1 hierarchy, or one v2 directory) recorded in
//! its state, so later commands never have to re-derive them.

mod fsutil;
pub mod stats;
mod v1;
mod v2;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use fsutil::{read_trim, write_file};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    V1,
    V2,
}

#[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures
fn is_cgroup2(path: &Path) -> bool {
    matches!(rustix::fs::statfs(path), Ok(s) if s.f_type as i64 == CGROUP2_SUPER_MAGIC)
}

/// Where the cgroup v2 hierarchy is mounted when it is the one to use: /sys/fs/cgroup on a v2
/// host, or the cgroup2 mount named by LBOX_CGROUP2_ROOT (nested engines, and hybrid hosts whose
/// /sys/fs/cgroup/unified is the only v2 hierarchy).
pub fn v2_root() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LBOX_CGROUP2_ROOT").map(PathBuf::from) {
        return is_cgroup2(&p).then_some(p);
    }
    let root = Path::new(CGROUP_ROOT);
    is_cgroup2(root).then(|| root.to_path_buf())
}

/// Detect the cgroup mode of this host.
pub fn mode() -> Mode {
    if v2_root().is_some() {
        Mode::V2
    } else {
        Mode::V1
    }
}

/// A v1 hierarchy: where it is mounted and which controllers it carries.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mountpoint: PathBuf,
    pub controllers: Vec<String>,
}

/// The v1 hierarchies mounted on this host (named ones such as name=systemd are left out).
pub fn v1_hierarchies() -> Vec<Hierarchy> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return vec![];
    };
    let mut out = Vec::new();
    for line in info.lines() {
        // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        if r.next() != Some("cgroup") {
            continue;
        }
        let Some(superopts) = r.nth(1) else { continue };
        let Some(mp) = left.split(' ').nth(4) else { continue };
        let controllers: Vec<String> = superopts
            .split(',')
            .filter(|o| {
                !matches!(
                    *o,
                    "rw" | "ro" | "xattr" | "clone_children" | "noprefix" | "cpuset_v2_mode"
                )
            })
            .filter(|o| !o.starts_with("name=") && !o.starts_with("release_agent="))
            .map(str::to_string)
            .collect();
        if !controllers.is_empty() {
            out.push(Hierarchy {
                mountpoint: PathBuf::from(mp),
                controllers,
            });
        }
    }
    out
}

/// This process's own cgroup in each hierarchy, from /proc/self/cgroup: controller list -> path.
fn own_cgroups() -> BTreeMap<String, String> {
    let text = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            Some((ctrls.to_string(), path.to_string()))
        })
        .collect()
}

/// The directories of one container's cgroup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CgroupPaths {
    /// v2: the single directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
    /// v1: controller name -> directory (combined hierarchies appear under each of their names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub v1: BTreeMap<String, PathBuf>,
    /// The parent (`lbox/`) was chosen by us, not the spec: remove it too once it is empty.
    #[serde(default)]
    pub owns_parent: bool,
}

/// Resolve the spec's cgroupsPath. Absolute paths are taken from the hierarchy root, relative ones
/// from the caller's own cgroup (as runc does), so tests and nested engines stay inside their own
/// subtree. With no path, `lbox/<id>` below the caller's cgroup.
fn join_inner(own: &str, spec_path: Option<&Path>, id: &str) -> PathBuf {
    let rel = match spec_path {
        Some(p) if p.is_absolute() => return clean(p),
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("lbox").join(id),
    };
    clean(&Path::new(own).join(rel))
}

/// Lexically clean an absolute path so `..` can never climb above the hierarchy root.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn under(mountpoint: &Path, inner: &Path) -> PathBuf {
    mountpoint.join(inner.strip_prefix("/").unwrap_or(inner))
}

impl CgroupPaths {
    /// Work out the directories for a container (nothing is created yet).
    pub fn resolve(spec_path: Option<&Path>, id: &str) -> Result<Self> {
        if let Some(p) = spec_path {
            let s = p.to_string_lossy();
            if s.contains(':') && !s.starts_with('/') {
                return Err(Error::Unsupported(format!(
                    "systemd cgroupsPath {s:?} (slice:prefix:name); pass a cgroupfs path"
                )));
            }
        }
        let own = own_cgroups();
        match v2_root() {
            Some(root) => {
                let base = own.get("").cloned().unwrap_or_else(|| "/".into());
                Ok(CgroupPaths {
                    unified: Some(under(&root, &join_inner(&base, spec_path, id))),
                    v1: BTreeMap::new(),
                    owns_parent: spec_path.is_none(),
                })
            }
            None => {
                let mut v1 = BTreeMap::new();
                for h in v1_hierarchies() {
                    let key = h.controllers.join(",");
                    let base = own.get(&key).cloned().unwrap_or_else(|| "/".into());
                    let dir = under(&h.mountpoint, &join_inner(&base, spec_path, id));
                    for c in &h.controllers {
                        v1.insert(c.clone(), dir.clone());
                    }
                }
                Ok(CgroupPaths {
                    unified: None,
                    v1,
                    owns_parent: spec_path.is_none(),
                })
            }
        }
    }

    /// Each distinct directory once.
    pub fn dirs(&self) -> Vec<&Path> {
        let mut d: Vec<&Path> = self.unified.iter().map(|p| p.as_path()).collect();
        for p in self.v1.values() {
            if !d.contains(&p.as_path()) {
                d.push(p);
            }
        }
        d
    }

    /// The v1 hierarchies as (controllers, directory): controllers that share a directory share a
    /// hierarchy (cpu,cpuacct). Derived from the recorded paths, so no mountinfo read is needed.
    pub fn v1_groups(&self) -> Vec<(Vec<&str>, &Path)> {
        let mut groups: Vec<(Vec<&str>, &Path)> = Vec::new();
        for (ctrl, dir) in &self.v1 {
            match groups.iter_mut().find(|(_, d)| *d == dir.as_path()) {
                Some((ctrls, _)) => ctrls.push(ctrl),
                None => groups.push((vec![ctrl], dir)),
            }
        }
        groups
    }

    pub fn is_v2(&self) -> bool {
        self.unified.is_some()
    }

    /// Create the directories and apply the spec's resources.
    pub fn create(&self, res: Option<&LinuxResources>) -> Result<()> {
        match &self.unified {
            Some(dir) => v2::create(dir)?,
            None => v1::create(self)?,
        }
        if let Some(res) = res {
            self.apply(res)?;
        }
        Ok(())
    }

    pub fn apply(&self, res: &LinuxResources) -> Result<()> {
        match &self.unified {
            Some(dir) => v2::apply(dir, res),
            None => v1::apply(self, res),
        }
    }

    /// Whether a (single-threaded) process can move itself in with `join_self`: v1 only, since a
    /// v2 domain cgroup takes no thread writes.
    pub fn can_join_self(&self) -> bool {
        self.unified.is_none()
    }

    /// Move the calling single-threaded process in by writing "0" to each v1 `tasks` file. The
    /// kernel migrates `current` without write-locking the global threadgroup rwsem, which
    /// `add_pid` (another process's pid into cgroup.procs) must take: that lock waits for an RCU
    /// grace period, 7-25 ms on an idle 2-core VM, against ~0.05 ms for this.
    pub fn join_self(&self) -> Result<()> {
        for d in self.dirs() {
            write_file(&d.join("tasks"), "0")?;
        }
        Ok(())
    }

    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for d in self.dirs() {
            write_file(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The directory to read the member list from.
    fn procs_dir(&self) -> Option<&Path> {
        self.unified.as_deref().or_else(|| {
            self.v1
                .get("pids")
                .or_else(|| self.v1.get("memory"))
                .or_else(|| self.v1.values().next())
                .map(|p| p.as_path())
        })
    }

    /// Every process in the cgroup, including those of sub-cgroups the container made.
    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        if let Some(d) = self.procs_dir() {
            collect_pids(d, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    pub fn freeze(&self, frozen: bool) -> Result<()> {
        match &self.unified {
            Some(dir) => v2::freeze(dir, frozen),
            None => match self.v1.get("freezer") {
                Some(dir) => v1::freeze(dir, frozen),
                None => Err(Error::Unsupported("pause without a v1 freezer hierarchy".into())),
            },
        }
    }

    pub fn is_frozen(&self) -> bool {
        match &self.unified {
            Some(dir) => fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"),
            None => self
                .v1
                .get("freezer")
                .is_some_and(|d| read_trim(&d.join("freezer.state")).is_ok_and(|s| s == "FROZEN" || s == "FREEZING")),
        }
    }

    /// Remove the directories (deepest first), waiting briefly for exiting processes to leave.
    pub fn destroy(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        for d in self.dirs() {
            remove_tree(d, deadline)?;
            if self.owns_parent {
                // Fails while other containers use it, which is what we want.
                let _ = d.parent().map(fs::remove_dir);
            }
        }
        Ok(())
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(s) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out);
            }
        }
    }
}

/// Remove a cgroup directory and the cgroups made below it. The rmdir is tried first: a
/// container's cgroup rarely has children, and listing a v1 directory of control files in every
/// hierarchy is most of the cost of removing it. EBUSY means children (removed first) or a
/// process still exiting (waited for, up to `deadline`).
fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    loop {
        let err = match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => e,
        };
        let mut children = false;
        if err.raw_os_error() == Some(libc::EBUSY) {
            if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        children = true;
                        remove_tree(&e.path(), deadline)?;
                    }
                }
            }
        }
        if err.raw_os_error() != Some(libc::EBUSY) || Instant::now() >= deadline {
            return Err(Error::Cgroup {
                path: dir.display().to_string(),
                msg: format!("cannot remove: {err}"),
            });
        }
        if !children {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Devices every container may use whatever its spec says (runc's list): null, zero, full, tty,
/// random, urandom, the pty multiplexer and its slaves, and mknod of any char/block node.
pub fn default_device_rules() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType as T};
    let rule = |t: T, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(t));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    vec![
        rule(T::C, None, None, "m"),
        rule(T::B, None, None, "m"),
        rule(T::C, Some(1), Some(3), "rwm"),
        rule(T::C, Some(1), Some(5), "rwm"),
        rule(T::C, Some(1), Some(7), "rwm"),
        rule(T::C, Some(1), Some(8), "rwm"),
        rule(T::C, Some(1), Some(9), "rwm"),
        rule(T::C, Some(5), Some(0), "rwm"),
        rule(T::C, Some(5), Some(1), "rwm"),
        rule(T::C, Some(5), Some(2), "rwm"),
        rule(T::C, Some(136), None, "rwm"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_paths() {
        assert_eq!(join_inner("/a/b", None, "x"), PathBuf::from("/a/b/lbox/x"));
        assert_eq!(
            join_inner("/a/b", Some(Path::new("/abs/p")), "x"),
            PathBuf::from("/abs/p")
        );
        assert_eq!(
            join_inner("/a", Some(Path::new("rel/p")), "x"),
            PathBuf::from("/a/rel/p")
        );
        assert_eq!(
            join_inner("/", Some(Path::new("../../../etc")), "x"),
            PathBuf::from("/etc")
        );
        assert_eq!(
            under(Path::new("/sys/fs/cgroup/memory"), Path::new("/a")),
            PathBuf::from("/sys/fs/cgroup/memory/a")
        );
    }

    #[test]
    fn v1_groups_follow_shared_directories() {
        let mut p = CgroupPaths::default();
        for (c, d) in [
            ("cpu", "/c/cpu,cpuacct/x"),
            ("cpuacct", "/c/cpu,cpuacct/x"),
            ("pids", "/c/pids/x"),
        ] {
            p.v1.insert(c.into(), PathBuf::from(d));
        }
        let g = p.v1_groups();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0], (vec!["cpu", "cpuacct"], Path::new("/c/cpu,cpuacct/x")));
        assert_eq!(g[1], (vec!["pids"], Path::new("/c/pids/x")));
    }

    #[test]
    fn systemd_paths_are_refused() {
        let e = CgroupPaths::resolve(Some(Path::new("system.slice:lbox:abc")), "abc").unwrap_err();
        assert!(e.to_string().contains("systemd"), "{e}");
    }
}
