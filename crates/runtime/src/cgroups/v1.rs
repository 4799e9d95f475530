//! cgroup v1: one directory per hierarchy, one file per knob.

use std::fs;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::fsutil::{make_dir, read_trim, write_file};
use super::CgroupPaths;
use crate::error::{Error, Result};

pub fn create(paths: &CgroupPaths) -> Result<()> {
    for dir in paths.dirs() {
        make_dir(dir, || fs::create_dir_all(dir))?;
    }
    if let Some(dir) = paths.v1.get("cpuset") {
        init_cpuset(dir)?;
    }
    Ok(())
}

/// A new v1 cpuset starts empty and refuses tasks: copy cpus and mems down from the nearest ancestor
/// that has them.
fn init_cpuset(dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if !read_trim(&dir.join(file)).unwrap_or_default().is_empty() {
            continue;
        }
        let mut chain = vec![dir.to_path_buf()];
        let mut cur = dir.parent();
        let mut value = String::new();
        while let Some(p) = cur {
            let v = read_trim(&p.join(file)).unwrap_or_default();
            if !v.is_empty() {
                value = v;
                break;
            }
            chain.push(p.to_path_buf());
            cur = p.parent();
        }
        for d in chain.iter().rev() {
            write_file(&d.join(file), &value)?;
        }
    }
    Ok(())
}

fn set(paths: &CgroupPaths, ctrl: &str, file: &str, value: &str) -> Result<()> {
    match paths.v1.get(ctrl) {
        Some(dir) => write_file(&dir.join(file), value),
        None => Err(Error::Cgroup {
            path: ctrl.into(),
            msg: format!("the {ctrl} controller is not mounted, cannot set {file}"),
        }),
    }
}

fn has(paths: &CgroupPaths, ctrl: &str, file: &str) -> bool {
    paths.v1.get(ctrl).is_some_and(|d| d.join(file).exists())
}

pub fn apply(p: &CgroupPaths, res: &LinuxResources) -> Result<()> {
    if let Some(m) = res.memory() {
        let memsw = m.swap().filter(|_| has(p, "memory", "memory.memsw.limit_in_bytes"));
        match (m.limit(), memsw) {
            // Raising both needs memsw first, lowering both needs the limit first: try one order,
            // then the other.
            (Some(l), Some(s)) => {
                if set(p, "memory", "memory.limit_in_bytes", &l.to_string()).is_err() {
                    set(p, "memory", "memory.memsw.limit_in_bytes", &s.to_string())?;
                    set(p, "memory", "memory.limit_in_bytes", &l.to_string())?;
                } else {
                    set(p, "memory", "memory.memsw.limit_in_bytes", &s.to_string())?;
                }
            }
            (Some(l), None) => set(p, "memory", "memory.limit_in_bytes", &l.to_string())?,
            (None, Some(s)) => set(p, "memory", "memory.memsw.limit_in_bytes", &s.to_string())?,
            (None, None) => {}
        }
        if let Some(r) = m.reservation() {
            set(p, "memory", "memory.soft_limit_in_bytes", &r.to_string())?;
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(Error::Invalid(format!("memory swappiness {s} is out of range 0-100")));
            }
            if has(p, "memory", "memory.swappiness") {
                set(p, "memory", "memory.swappiness", &s.to_string())?;
            }
        }
        if m.disable_oom_killer() == Some(true) {
            set(p, "memory", "memory.oom_control", "1")?;
        }
    }
    if let Some(c) = res.cpu() {
        if let Some(s) = c.shares() {
            set(p, "cpu", "cpu.shares", &s.to_string())?;
        }
        if let Some(per) = c.period() {
            set(p, "cpu", "cpu.cfs_period_us", &per.to_string())?;
        }
        if let Some(q) = c.quota() {
            set(p, "cpu", "cpu.cfs_quota_us", &q.to_string())?;
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            set(p, "cpuset", "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            set(p, "cpuset", "cpuset.mems", mems)?;
        }
    }
    if let Some(pids) = res.pids() {
        let v = if pids.limit() > 0 {
            pids.limit().to_string()
        } else {
            "max".into()
        };
        set(p, "pids", "pids.max", &v)?;
    }
    if let Some(b) = res.block_io() {
        if let Some(w) = b.weight() {
            let f = if has(p, "blkio", "blkio.weight") {
                "blkio.weight"
            } else {
                "blkio.bfq.weight"
            };
            set(p, "blkio", f, &w.to_string())?;
        }
        if let Some(w) = b.leaf_weight() {
            if has(p, "blkio", "blkio.leaf_weight") {
                set(p, "blkio", "blkio.leaf_weight", &w.to_string())?;
            }
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                let f = if has(p, "blkio", "blkio.weight_device") {
                    "blkio.weight_device"
                } else {
                    "blkio.bfq.weight_device"
                };
                set(p, "blkio", f, &format!("{}:{} {w}", wd.major(), wd.minor()))?;
            }
        }
        let throttles = [
            ("blkio.throttle.read_bps_device", b.throttle_read_bps_device()),
            ("blkio.throttle.write_bps_device", b.throttle_write_bps_device()),
            ("blkio.throttle.read_iops_device", b.throttle_read_iops_device()),
            ("blkio.throttle.write_iops_device", b.throttle_write_iops_device()),
        ];
        for (file, list) in throttles {
            for t in list.iter().flatten() {
                set(p, "blkio", file, &format!("{}:{} {}", t.major(), t.minor(), t.rate()))?;
            }
        }
    }
    for h in res.hugepage_limits().iter().flatten() {
        set(
            p,
            "hugetlb",
            &format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            &h.limit().to_string(),
        )?;
    }
    if let Some(n) = res.network() {
        if let Some(id) = n.class_id() {
            set(p, "net_cls", "net_cls.classid", &id.to_string())?;
        }
        for prio in n.priorities().iter().flatten() {
            set(
                p,
                "net_prio",
                "net_prio.ifpriomap",
                &format!("{} {}", prio.name(), prio.priority()),
            )?;
        }
    }
    if let Some(u) = res.unified() {
        if !u.is_empty() {
            return Err(Error::Invalid(
                "linux.resources.unified needs cgroup v2; this host runs cgroup v1".into(),
            ));
        }
    }
    if p.v1.contains_key("devices") {
        apply_devices(p, res.devices().as_deref().unwrap_or(&[]))?;
    }
    Ok(())
}

/// Deny everything, then replay the spec's rules in order followed by the devices every container
/// needs (as runc does).
fn apply_devices(p: &CgroupPaths, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    set(p, "devices", "devices.deny", "a")?;
    for r in rules.iter().chain(super::default_device_rules().iter()) {
        let line = device_rule(r);
        let file = if r.allow() { "devices.allow" } else { "devices.deny" };
        set(p, "devices", file, &line)?;
    }
    Ok(())
}

pub fn device_rule(r: &LinuxDeviceCgroup) -> String {
    let t = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::B => "b",
        LinuxDeviceType::C | LinuxDeviceType::U => "c",
        LinuxDeviceType::P => "c",
        LinuxDeviceType::A => "a",
    };
    let num = |n: Option<i64>| n.filter(|v| *v >= 0).map_or("*".to_string(), |v| v.to_string());
    let access = r.access().as_deref().filter(|a| !a.is_empty()).unwrap_or("rwm");
    format!("{t} {}:{} {access}", num(r.major()), num(r.minor()))
}

pub fn freeze(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    super::fsutil::wait_until(dir, want, || {
        write_file(&dir.join("freezer.state"), want)?;
        Ok(read_trim(&dir.join("freezer.state"))? == want)
    })
}
