//! cgroup v2: one directory; controllers must be enabled in every ancestor's subtree_control.

use std::fs;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::fsutil::{make_dir, read_trim, write_file};
use crate::error::{Error, Result};

const WANTED: [&str; 6] = ["cpu", "cpuset", "io", "memory", "pids", "hugetlb"];

pub fn create(dir: &Path) -> Result<()> {
    let root = super::v2_root().unwrap_or_else(|| Path::new(super::CGROUP_ROOT).to_path_buf());
    // Controllers are enabled from the root down to the parent.
    let mut ancestors: Vec<&Path> = dir.ancestors().skip(1).take_while(|a| a.starts_with(&root)).collect();
    ancestors.reverse();
    // Two containers may make a shared parent at once: one that exists already is fine.
    make_dir(dir, || {
        for a in &ancestors {
            if !a.exists() {
                match fs::create_dir(a) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", a.display()))),
                }
            }
            enable_controllers(a);
        }
        match fs::create_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    })
}

/// Delegate the controllers LockBox sets to `dir`'s children. A cgroup with member processes
/// refuses (EBUSY); then the controllers it already delegates are what we get.
fn enable_controllers(dir: &Path) {
    let avail = read_trim(&dir.join("cgroup.controllers")).unwrap_or_default();
    let enable: Vec<String> = avail
        .split(' ')
        .filter(|c| WANTED.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if !enable.is_empty() {
        let _ = write_file(&dir.join("cgroup.subtree_control"), &enable.join(" "));
    }
}

fn set(dir: &Path, file: &str, value: &str) -> Result<()> {
    write_file(&dir.join(file), value)
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), the conversion runc and the kernel docs use.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10) * 9999) / 990
}

fn limit(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

pub fn apply(dir: &Path, res: &LinuxResources) -> Result<()> {
    if res.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        // v2 filters devices with an eBPF program, which lbox-runc does not load yet.
        eprintln!("lbox-runc: warning: device cgroup rules are not enforced on cgroup v2 yet");
    }
    if let Some(m) = res.memory() {
        if let Some(l) = m.limit() {
            set(dir, "memory.max", &limit(l))?;
        }
        if let Some(r) = m.reservation() {
            set(dir, "memory.low", &limit(r))?;
        }
        if let Some(s) = m.swap() {
            // The spec's swap is memory+swap; v2's swap.max is swap alone.
            let v = match (s, m.limit()) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l >= 0 => (s - l).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            if dir.join("memory.swap.max").exists() {
                set(dir, "memory.swap.max", &v)?;
            }
        }
        if m.disable_oom_killer() == Some(true) {
            return Err(Error::Unsupported("disableOOMKiller on cgroup v2".into()));
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares() {
            set(dir, "cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if c.quota().is_some() || c.period().is_some() {
            let quota = c.quota().map_or("max".to_string(), limit);
            let period = c.period().unwrap_or(100_000);
            set(dir, "cpu.max", &format!("{quota} {period}"))?;
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            set(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            set(dir, "cpuset.mems", mems)?;
        }
    }
    if let Some(p) = res.pids() {
        set(
            dir,
            "pids.max",
            &if p.limit() > 0 {
                p.limit().to_string()
            } else {
                "max".into()
            },
        )?;
    }
    if let Some(b) = res.block_io() {
        if let Some(w) = b.weight() {
            set(dir, "io.weight", &blkio_to_io_weight(w).to_string())?;
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                set(
                    dir,
                    "io.weight",
                    &format!("{}:{} {}", wd.major(), wd.minor(), blkio_to_io_weight(w)),
                )?;
            }
        }
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, list) in throttles {
            for t in list.iter().flatten() {
                set(
                    dir,
                    "io.max",
                    &format!("{}:{} {key}={}", t.major(), t.minor(), t.rate()),
                )?;
            }
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        set(dir, &format!("hugetlb.{}.max", h.page_size()), &h.limit().to_string())?;
    }
    for (k, v) in res.unified().iter().flatten() {
        if k.contains('/') || k.starts_with('.') {
            return Err(Error::Invalid(format!("linux.resources.unified: bad key {k:?}")));
        }
        set(dir, k, v)?;
    }
    Ok(())
}

pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    set(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let want = if frozen { "frozen 1" } else { "frozen 0" };
    super::fsutil::wait_until(dir, want, || {
        Ok(fs::read_to_string(dir.join("cgroup.events"))
            .unwrap_or_default()
            .lines()
            .any(|l| l == want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }
}
