//! Resource usage in the shape runc's `events --stats` prints (containerd parses it).

use std::collections::BTreeMap;

use serde::Serialize;

use super::fsutil::{read_kv, read_u64};
use super::CgroupPaths;

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    pub usage: u64,
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    pub current: u64,
    pub limit: u64,
}

const NO_LIMIT_V1: u64 = 0x7FFF_FFFF_FFFF_F000;

fn read_limit(p: &std::path::Path) -> u64 {
    match std::fs::read_to_string(p).map(|s| s.trim().to_string()) {
        Ok(s) if s == "max" => u64::MAX,
        Ok(s) => s.parse().unwrap_or(0),
        Err(_) => 0,
    }
}

impl CgroupPaths {
    /// How many processes the OOM killer has killed in this cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let file = match (&self.unified, self.v1.get("memory")) {
            (Some(d), _) => d.join("memory.events"),
            (None, Some(d)) => d.join("memory.oom_control"),
            (None, None) => return 0,
        };
        read_kv(&file).get("oom_kill").copied().unwrap_or(0)
    }

    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        if let Some(d) = &self.unified {
            let cpu = read_kv(&d.join("cpu.stat"));
            let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
            s.cpu.usage = CpuUsage {
                total: g("usage_usec") * 1000,
                percpu: vec![],
                kernel: g("system_usec") * 1000,
                user: g("user_usec") * 1000,
            };
            s.cpu.throttling = Throttling {
                periods: g("nr_periods"),
                throttled_periods: g("nr_throttled"),
                throttled_time: g("throttled_usec") * 1000,
            };
            s.memory.usage = MemoryEntry {
                usage: read_u64(&d.join("memory.current")).unwrap_or(0),
                max: read_u64(&d.join("memory.peak")).unwrap_or(0),
                limit: read_limit(&d.join("memory.max")),
                failcnt: read_kv(&d.join("memory.events")).get("max").copied().unwrap_or(0),
            };
            s.memory.swap = MemoryEntry {
                usage: read_u64(&d.join("memory.swap.current")).unwrap_or(0),
                limit: read_limit(&d.join("memory.swap.max")),
                ..Default::default()
            };
            s.memory.raw = read_kv(&d.join("memory.stat"));
            s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
            s.pids = Pids {
                current: read_u64(&d.join("pids.current")).unwrap_or(0),
                limit: read_limit(&d.join("pids.max")),
            };
            return s;
        }
        if let Some(d) = self.v1.get("cpuacct") {
            let st = read_kv(&d.join("cpuacct.stat"));
            // cpuacct.stat is in USER_HZ ticks; runc reports nanoseconds.
            let tick = 1_000_000_000 / 100;
            s.cpu.usage = CpuUsage {
                total: read_u64(&d.join("cpuacct.usage")).unwrap_or(0),
                percpu: std::fs::read_to_string(d.join("cpuacct.usage_percpu"))
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect(),
                kernel: st.get("system").copied().unwrap_or(0) * tick,
                user: st.get("user").copied().unwrap_or(0) * tick,
            };
        }
        if let Some(d) = self.v1.get("cpu") {
            let st = read_kv(&d.join("cpu.stat"));
            let g = |k: &str| st.get(k).copied().unwrap_or(0);
            s.cpu.throttling = Throttling {
                periods: g("nr_periods"),
                throttled_periods: g("nr_throttled"),
                throttled_time: g("throttled_time"),
            };
        }
        if let Some(d) = self.v1.get("memory") {
            let entry = |prefix: &str| MemoryEntry {
                usage: read_u64(&d.join(format!("{prefix}.usage_in_bytes"))).unwrap_or(0),
                max: read_u64(&d.join(format!("{prefix}.max_usage_in_bytes"))).unwrap_or(0),
                limit: read_u64(&d.join(format!("{prefix}.limit_in_bytes"))).map_or(0, |l| {
                    if l >= NO_LIMIT_V1 {
                        u64::MAX
                    } else {
                        l
                    }
                }),
                failcnt: read_u64(&d.join(format!("{prefix}.failcnt"))).unwrap_or(0),
            };
            s.memory.usage = entry("memory");
            s.memory.swap = entry("memory.memsw");
            s.memory.raw = read_kv(&d.join("memory.stat"));
            s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        }
        if let Some(d) = self.v1.get("pids") {
            s.pids = Pids {
                current: read_u64(&d.join("pids.current")).unwrap_or(0),
                limit: read_limit(&d.join("pids.max")),
            };
        }
        s
    }
}
