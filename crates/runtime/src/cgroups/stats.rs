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
    pub blkio: Blkio,
}

/// Bytes read and written per device, as runc's `blkio.ioServiceBytesRecursive`.
#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    #[serde(rename = "ioServiceBytesRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// "Read", "Write", … (v1's operation names; v2's rbytes/wbytes map to Read/Write).
    pub op: String,
    pub value: u64,
}

impl Blkio {
    /// The total of one operation over every device.
    pub fn total(&self, op: &str) -> u64 {
        self.io_service_bytes_recursive
            .iter()
            .filter(|e| e.op.eq_ignore_ascii_case(op))
            .map(|e| e.value)
            .sum()
    }
}

fn device(dev: &str) -> Option<(u64, u64)> {
    let (ma, mi) = dev.split_once(':')?;
    Some((ma.parse().ok()?, mi.parse().ok()?))
}

/// v1 `blkio.*io_service_bytes_recursive`: "8:0 Read 4096" lines, then "Total N".
fn parse_v1_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (major, minor) = device(f.next()?)?;
            let op = f.next()?.to_string();
            let value = f.next()?.parse().ok()?;
            Some(BlkioEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// v2 `io.stat`: "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0" lines.
fn parse_v2_io_stat(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut f = l.split_whitespace();
        let Some((major, minor)) = f.next().and_then(device) else {
            continue;
        };
        for kv in f {
            let op = match kv.split_once('=') {
                Some(("rbytes", v)) => ("Read", v),
                Some(("wbytes", v)) => ("Write", v),
                _ => continue,
            };
            if let Ok(value) = op.1.parse() {
                out.push(BlkioEntry {
                    major,
                    minor,
                    op: op.0.to_string(),
                    value,
                });
            }
        }
    }
    out
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
            s.blkio.io_service_bytes_recursive =
                parse_v2_io_stat(&std::fs::read_to_string(d.join("io.stat")).unwrap_or_default());
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
        if let Some(d) = self.v1.get("blkio") {
            // The throttle counters count every I/O; the others only under the CFQ/BFQ schedulers.
            let text = std::fs::read_to_string(d.join("blkio.throttle.io_service_bytes_recursive"))
                .or_else(|_| std::fs::read_to_string(d.join("blkio.io_service_bytes_recursive")))
                .unwrap_or_default();
            s.blkio.io_service_bytes_recursive = parse_v1_blkio(&text);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_from_v1_and_v2_files() {
        let v1 = parse_v1_blkio("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:16 Read 1\nTotal 12289\n");
        let b = Blkio {
            io_service_bytes_recursive: v1,
        };
        assert_eq!((b.total("read"), b.total("write")), (4097, 8192));
        let v2 = parse_v2_io_stat("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=5 wbytes=0\n");
        assert_eq!(
            v2[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 100
            }
        );
        let b = Blkio {
            io_service_bytes_recursive: v2,
        };
        assert_eq!((b.total("Read"), b.total("Write")), (105, 200));
        assert!(parse_v1_blkio("garbage\n\n").is_empty() && parse_v2_io_stat("x y=z\n").is_empty());
    }
}
