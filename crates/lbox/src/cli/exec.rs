//! `exec`, `top` and `stats`: looking into running containers.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use engine::exec::{self, ExecRequest};
use serde_json::json;

use super::containers::open;
use super::output::{self, print_table, table};

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Run in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Set environment variables.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file")]
    pub env_file: Vec<std::path::PathBuf>,
    /// User name or uid, with an optional group.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give the process every capability.
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn exec_cmd(root: &Path, a: ExecArgs) -> Result<i32> {
    let e = open(root)?;
    let ct = e.find(&a.container)?;
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(engine::parse::env_file(f)?);
    }
    env.extend(a.env.iter().cloned());
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            bail!("invalid --workdir {w:?}: must be an absolute path");
        }
    }
    let r = ExecRequest {
        args: a.command,
        env,
        user: a.user,
        workdir: a.workdir,
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        privileged: a.privileged,
    };
    Ok(exec::exec(&e, &ct, &r)?)
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
    /// ps options (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// Docker's way: run the host's ps and keep the rows of the container's processes.
pub fn top(root: &Path, a: TopArgs) -> Result<i32> {
    let e = open(root)?;
    let ct = e.find(&a.container)?;
    let pids = exec::pids(&e, &ct)?;
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args
    };
    let out = std::process::Command::new("ps").args(&args).output()?;
    if !out.status.success() {
        bail!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
        bail!(
            "ps {}: its output has no PID column; include it (for example -o pid,args)",
            args.join(" ")
        );
    };
    println!("{header}");
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            println!("{l}");
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Print one sample and exit.
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: table, json, or a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn sample(root: &Path, a: &StatsArgs, interval: Duration) -> Result<Vec<serde_json::Value>> {
    let e = open(root)?;
    let cts = if a.containers.is_empty() {
        e.containers()?
            .into_iter()
            .filter(|c| a.all || c.state.is_active())
            .collect::<Vec<_>>()
    } else {
        a.containers.iter().map(|n| e.find(n)).collect::<Result<Vec<_>, _>>()?
    };
    let first: Vec<_> = cts
        .iter()
        .map(|c| exec::stats(&e, c).ok().flatten().map(|s| s.cpu.usage.total))
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(interval);
    let wall = t0.elapsed().as_nanos() as f64;
    let host_mem = host_memory();
    let mut rows = Vec::new();
    for (c, before) in cts.iter().zip(first) {
        let s = exec::stats(&e, c)?;
        let block = s
            .as_ref()
            .map_or((0, 0), |s| (s.blkio.total("Read"), s.blkio.total("Write")));
        let net = exec::net_io(c).unwrap_or((0, 0));
        let (cpu, mem, limit, pids) = match &s {
            Some(s) => {
                let cpu = match before {
                    Some(b) if wall > 0.0 => (s.cpu.usage.total.saturating_sub(b)) as f64 / wall * 100.0,
                    _ => 0.0,
                };
                let usage = s.memory.usage.usage.saturating_sub(
                    s.memory
                        .raw
                        .get("total_inactive_file")
                        .or(s.memory.raw.get("inactive_file"))
                        .copied()
                        .unwrap_or(0),
                );
                let limit = match s.memory.usage.limit {
                    0 => host_mem,
                    l if l >= host_mem || l == u64::MAX => host_mem,
                    l => l,
                };
                (cpu, usage, limit, s.pids.current)
            }
            None => (0.0, 0, 0, 0),
        };
        let pct = if limit > 0 {
            mem as f64 * 100.0 / limit as f64
        } else {
            0.0
        };
        rows.push(json!({
            "ID": if a.no_trunc { c.id.clone() } else { c.short_id().to_string() },
            "Name": c.name,
            "CPUPerc": format!("{cpu:.2}%"),
            "MemUsage": format!("{} / {}", output::size(mem), output::size(limit)),
            "MemPerc": format!("{pct:.2}%"),
            "NetIO": format!("{} / {}", output::size(net.0), output::size(net.1)),
            "BlockIO": format!("{} / {}", output::size(block.0), output::size(block.1)),
            "PIDs": pids.to_string(),
        }));
    }
    Ok(rows)
}

fn print(rows: &[serde_json::Value], format: Option<&str>) -> Result<()> {
    super::template::print_rows(format, rows, |rows| {
        let mut t = table(&[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ]);
        for r in rows {
            let f = |k: &str| r[k].as_str().unwrap_or("").to_string();
            t.add_row(vec![
                f("ID"),
                f("Name"),
                f("CPUPerc"),
                f("MemUsage"),
                f("MemPerc"),
                f("NetIO"),
                f("BlockIO"),
                f("PIDs"),
            ]);
        }
        print_table(&mut t);
    })
}

pub fn stats(root: &Path, a: StatsArgs) -> Result<i32> {
    if a.no_stream {
        print(&sample(root, &a, Duration::from_millis(500))?, a.format.as_deref())?;
        return Ok(0);
    }
    loop {
        let rows = sample(root, &a, Duration::from_secs(1))?;
        // Docker redraws in place: clear the screen, then the table.
        print!("\x1b[2J\x1b[H");
        print(&rows, a.format.as_deref())?;
        let _ = std::io::stdout().flush();
    }
}
