//! `logs`: a container's output from its json-file log, with --tail, --since/--until,
//! timestamps, and -f to follow until the container stops.

use std::io::{BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use engine::logs::{self, Entry};

use super::containers::open;
use super::output::parse_time;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a time (RFC 3339) or a duration ago (e.g. 10m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a time (RFC 3339) or a duration ago.
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

/// A time bound: RFC 3339, Unix seconds, or a duration before now. In nanoseconds.
fn bound(flag: &str, s: &str) -> Result<i64> {
    if let Some(t) = parse_time(s) {
        return Ok(t * 1_000_000_000);
    }
    if let Ok(n) = s.parse::<f64>() {
        return Ok((n * 1e9) as i64);
    }
    match engine::parse::duration_ms(flag, s) {
        Ok(ms) => Ok(engine::time::now_ns() - ms as i64 * 1_000_000),
        Err(_) => bail!("invalid {flag} {s:?}: use an RFC 3339 time, Unix seconds or a duration such as 10m"),
    }
}

fn entry_ns(e: &Entry) -> i64 {
    parse_time(&e.time).map_or(0, |s| {
        // parse_time is seconds; keep sub-second order for --since precision.
        let frac = e
            .time
            .split_once('.')
            .map(|(_, f)| f.trim_end_matches('Z'))
            .and_then(|f| format!("{:0<9}", &f[..f.len().min(9)]).parse::<i64>().ok())
            .unwrap_or(0);
        s * 1_000_000_000 + frac
    })
}

struct Printer {
    timestamps: bool,
    since: Option<i64>,
    until: Option<i64>,
}

impl Printer {
    fn print(&self, e: &Entry) {
        let t = entry_ns(e);
        if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t > u) {
            return;
        }
        let text = if self.timestamps {
            format!("{} {}", e.time, e.log)
        } else {
            e.log.clone()
        };
        // A closed pipe (logs | head) is not an error worth reporting.
        let _ = if e.stream == "stderr" {
            std::io::stderr().write_all(text.as_bytes())
        } else {
            std::io::stdout().write_all(text.as_bytes())
        };
    }
}

pub fn logs(root: &Path, a: LogsArgs) -> Result<i32> {
    let tail: Option<usize> = match a.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}: use a number or all"))?,
        ),
    };
    let p = Printer {
        timestamps: a.timestamps,
        since: a.since.as_deref().map(|s| bound("--since", s)).transpose()?,
        until: a.until.as_deref().map(|s| bound("--until", s)).transpose()?,
    };
    let e = open(root)?;
    let ct = e.find(&a.container)?;
    let path = e.paths.log(&ct.id);
    let (all, current) = logs::read_all_open(&path);
    let start = tail.map_or(0, |n| all.len().saturating_sub(n));
    for entry in &all[start..] {
        p.print(entry);
    }
    let _ = std::io::stdout().flush();
    if !a.follow {
        return Ok(0);
    }
    // Follow: read what is appended (reopening after a rotation) until the container stops.
    let (mut file, mut offset) = match current {
        Some((f, read)) => (Some(f), read),
        None => (None, 0),
    };
    let mut ino = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.ino());
    loop {
        let running = e.find(&ct.id).map(|c| c.state.is_active()).unwrap_or(false);
        if let Some(f) = file.as_mut() {
            let _ = f.seek(SeekFrom::Start(offset));
            let mut got = Vec::new();
            offset += logs::read_from(BufReader::new(&mut *f), &mut got);
            for entry in &got {
                p.print(entry);
            }
            let _ = std::io::stdout().flush();
        }
        let now_ino = std::fs::metadata(&path).ok().map(|m| m.ino());
        if now_ino != ino {
            file = std::fs::File::open(&path).ok();
            ino = now_ino;
            offset = 0;
            continue;
        }
        if !running {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
