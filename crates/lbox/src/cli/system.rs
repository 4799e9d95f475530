//! `system prune|df|info` and `volume create|ls|inspect|rm|prune`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use engine::{prune, volumes};
use serde_json::json;

use super::containers::open;
use super::output::{self, print_table, table};

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Remove stopped containers, unused images and what interrupted commands left behind.
    Prune(SystemPruneArgs),
    /// Show disk usage.
    Df,
    /// Show system-wide information.
    Info,
    /// Remove every container, image, volume and network (the default one too) of this root.
    Reset(SystemResetArgs),
}

#[derive(Args, Debug)]
pub struct SystemResetArgs {
    /// Do not prompt (LockBox never prompts; accepted for podman compatibility).
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images, not just untagged ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt (LockBox never prompts; accepted for Docker compatibility).
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes no container uses.
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(VolumeCreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Show volumes (JSON).
    Inspect(VolumeInspectArgs),
    /// Remove volumes.
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove volumes no container uses.
    Prune(VolumePruneArgs),
}

#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    /// The volume's name (generated when absent).
    pub name: Option<String>,
    /// Set metadata (KEY=VALUE).
    #[arg(short, long)]
    pub label: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumeLsArgs {
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table, json, or a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct VolumeInspectArgs {
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumeRmArgs {
    /// Remove even if a (stopped) container refers to it.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumePruneArgs {
    /// Remove named volumes too, not only anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    #[arg(short, long)]
    pub force: bool,
}

pub fn system(root: &Path, c: SystemCommand) -> Result<i32> {
    match c {
        SystemCommand::Prune(a) => system_prune(root, a),
        SystemCommand::Df => df(root),
        SystemCommand::Info => info(root),
        SystemCommand::Reset(_) => reset(root),
    }
}

/// podman's `system reset`: back to an empty root (containers are stopped and removed with
/// their volumes, then networks, volumes and images go).
fn reset(root: &Path) -> Result<i32> {
    let e = open(root)?;
    let mut failed = Vec::new();
    for ct in e.containers()? {
        if let Err(err) = engine::remove::remove(&e, &ct, true, true) {
            failed.push(format!("container {}: {err}", ct.name));
        }
    }
    if let Err(err) = engine::networks::remove_all(&e) {
        failed.push(format!("networks: {err}"));
    }
    if let Err(err) = volumes::prune(&e, true) {
        failed.push(format!("volumes: {err}"));
    }
    // After the containers: their removal may have started a refill, which this waits for.
    engine::netpool::drain(&e.paths);
    if let Err(err) = e.images().and_then(|i| Ok(i.prune(true, &[])?)) {
        failed.push(format!("images: {err}"));
    }
    if !failed.is_empty() {
        bail!("system reset left some things behind:\n  {}", failed.join("\n  "));
    }
    Ok(0)
}

fn system_prune(root: &Path, a: SystemPruneArgs) -> Result<i32> {
    let e = open(root)?;
    let removed = prune::containers(&e)?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for n in &removed {
            println!("{n}");
        }
    }
    let cleaned = prune::orphans(&e)?;
    if cleaned > 0 {
        println!("Cleaned {cleaned} leftovers of interrupted commands");
    }
    let mut freed = 0;
    if a.volumes {
        let (vols, bytes) = volumes::prune(&e, false)?;
        freed += bytes;
        if !vols.is_empty() {
            println!("Deleted Volumes:");
            for v in vols {
                println!("{v}");
            }
        }
    }
    let keep: Vec<image::Digest> = prune::images_in_use(&e)?
        .iter()
        .filter_map(|i| i.parse().ok())
        .collect();
    let (imgs, bytes) = e.images()?.prune(a.all, &keep)?;
    freed += bytes;
    if !imgs.is_empty() {
        println!("Deleted Images:");
        for i in imgs {
            println!("deleted: {i}");
        }
    }
    println!("Total reclaimed space: {}", output::size(freed));
    Ok(0)
}

fn df(root: &Path) -> Result<i32> {
    let e = open(root)?;
    let imgs = e.images()?.images()?;
    let used = prune::images_in_use(&e)?;
    let img_size: u64 = imgs.iter().map(|i| i.size).sum();
    let img_unused: u64 = imgs
        .iter()
        .filter(|i| !used.contains(&i.id.to_string()))
        .map(|i| i.size)
        .sum();
    let cts = e.containers()?;
    let ct_size: u64 = cts
        .iter()
        .map(|c| volumes::dir_size(&e.paths.container(&c.id).join("upper")))
        .sum();
    let ct_unused: u64 = cts
        .iter()
        .filter(|c| !c.state.is_active())
        .map(|c| volumes::dir_size(&e.paths.container(&c.id).join("upper")))
        .sum();
    let vols = volumes::list(&e)?;
    let mut v_size = 0;
    let mut v_unused = 0;
    let mut v_active = 0;
    for v in &vols {
        let s = volumes::dir_size(&e.paths.volumes().join(&v.name));
        v_size += s;
        if volumes::users(&e, &v.name)?.is_empty() {
            v_unused += s;
        } else {
            v_active += 1;
        }
    }
    let pct = |part: u64, all: u64| format!("{}%", (part * 100).checked_div(all).unwrap_or(0));
    let mut t = table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    t.add_row(vec![
        "Images".to_string(),
        imgs.len().to_string(),
        imgs.iter()
            .filter(|i| used.contains(&i.id.to_string()))
            .count()
            .to_string(),
        output::size(img_size),
        format!("{} ({})", output::size(img_unused), pct(img_unused, img_size)),
    ]);
    t.add_row(vec![
        "Containers".to_string(),
        cts.len().to_string(),
        cts.iter().filter(|c| c.state.is_active()).count().to_string(),
        output::size(ct_size),
        format!("{} ({})", output::size(ct_unused), pct(ct_unused, ct_size)),
    ]);
    t.add_row(vec![
        "Local Volumes".to_string(),
        vols.len().to_string(),
        v_active.to_string(),
        output::size(v_size),
        format!("{} ({})", output::size(v_unused), pct(v_unused, v_size)),
    ]);
    print_table(&mut t);
    Ok(0)
}

fn info(root: &Path) -> Result<i32> {
    let e = open(root)?;
    let cts = e.containers()?;
    let count = |s: engine::State| cts.iter().filter(|c| c.state == s).count();
    let uts = rustix::system::uname();
    let cgroup = match runtime::cgroups::v2_root() {
        Some(_) => "2",
        None => "1",
    };
    println!("Client: LockBox (lbox) version {}", env!("CARGO_PKG_VERSION"));
    println!("Server: none (daemonless)");
    println!(" Containers: {}", cts.len());
    println!("  Running: {}", count(engine::State::Running));
    println!("  Paused: {}", count(engine::State::Paused));
    println!(
        "  Stopped: {}",
        cts.len() - count(engine::State::Running) - count(engine::State::Paused)
    );
    println!(" Images: {}", e.images()?.images()?.len());
    println!(" Storage Driver: overlay");
    println!(" Logging Driver: json-file");
    println!(" Cgroup Version: {cgroup}");
    println!(" Runtimes: lbox (built in), any runc-compatible runtime via --runtime");
    println!(" Kernel Version: {}", uts.release().to_string_lossy());
    println!(" Operating System: {}", os_name());
    println!(" Architecture: {}", std::env::consts::ARCH);
    println!(
        " CPUs: {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(" Root Dir: {}", e.paths.root.display());
    println!(" Run Dir: {}", e.paths.run.display());
    Ok(0)
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

pub fn volume(root: &Path, c: VolumeCommand) -> Result<i32> {
    let e = open(root)?;
    match c {
        VolumeCommand::Create(a) => {
            let name = match a.name {
                Some(n) => n,
                None => engine::names::new_id()?,
            };
            engine::parse::check_volume_name(&name)?;
            let mut labels = BTreeMap::new();
            engine::parse::labels(&a.label, &mut labels)?;
            if volumes::get(&e, &name)?.is_none() {
                volumes::create(&e, &name, &labels, false)?;
            }
            println!("{name}");
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let vols = volumes::list(&e)?;
            if a.quiet {
                for v in &vols {
                    println!("{}", v.name);
                }
                return Ok(0);
            }
            let rows: Vec<serde_json::Value> = vols.iter().map(|v| volume_json(&e, v)).collect();
            super::template::print_rows(a.format.as_deref(), &rows, |rows| {
                let mut t = table(&["DRIVER", "VOLUME NAME"]);
                for r in rows {
                    t.add_row(vec!["local".to_string(), r["Name"].as_str().unwrap_or("").to_string()]);
                }
                print_table(&mut t);
            })?;
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match volumes::get(&e, n)? {
                    Some(v) => out.push(volume_json(&e, &v)),
                    None => {
                        eprintln!("lbox: no such volume: {n}");
                        code = 1;
                    }
                }
            }
            super::template::print_inspect(a.format.as_deref(), &out)?;
            Ok(code)
        }
        VolumeCommand::Rm(a) => {
            let mut code = 0;
            for n in &a.names {
                match volumes::remove(&e, n, a.force) {
                    Ok(()) => println!("{n}"),
                    Err(err) => {
                        eprintln!("lbox: {err}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(a) => {
            let (vols, bytes) = volumes::prune(&e, a.all)?;
            if !vols.is_empty() {
                println!("Deleted Volumes:");
                for v in &vols {
                    println!("{v}");
                }
            }
            println!("Total reclaimed space: {}", output::size(bytes));
            Ok(0)
        }
    }
}

fn volume_json(e: &engine::Engine, v: &volumes::Volume) -> serde_json::Value {
    json!({
        "Name": v.name,
        "Driver": "local",
        "Mountpoint": e.paths.volume(&v.name),
        "CreatedAt": engine::time::rfc3339(v.created),
        "Labels": v.labels,
        "Scope": "local",
        "Anonymous": v.anonymous,
    })
}

/// Refuse to remove an image a container uses (Docker's conflict error), unless forced.
pub fn check_image_unused(root: &Path, image: &str, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    let e = open(root)?;
    let Ok(img) = e.images()?.find(image) else {
        return Ok(());
    };
    let id = img.id.to_string();
    for c in engine::db::all(e.db())? {
        if c.config.image_id == id {
            bail!(
                "conflict: unable to remove image {image}: container {} ({}) uses it; remove the container first, or use: lbox rmi -f {image}",
                c.short_id(),
                c.name
            );
        }
    }
    Ok(())
}
