//! Container commands: run, create, start, stop, kill, restart, rm, wait, pause, unpause, rename.

use std::path::Path;

use anyhow::{bail, Result};
use clap::Args;
use engine::create::{self, CreateRequest};
use engine::{lifecycle, remove, Container, Engine, Paths};

use super::images::{self, PullArgs};
use super::run_flags::CreateFlags;

pub fn open(root: &Path) -> Result<Engine> {
    Ok(Engine::open(Paths::from_env(root))?)
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateFlags,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub create: CreateFlags,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach stdout/stderr and wait for the container to exit.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach stdin.
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing.
    #[arg(short = 't', long = "time", alias = "timeout", allow_hyphen_values = true)]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

/// Find the image, pulling it when it is missing (or always, with --pull always).
fn resolve_image(root: &Path, e: &Engine, f: &CreateFlags) -> Result<(String, image::manifest::ImageConfig)> {
    let store = e.images()?;
    let found = match f.pull.as_str() {
        "always" => None,
        "missing" | "never" => match store.find(&f.image) {
            Ok(img) => Some(img),
            Err(image::Error::ImageNotFound(_)) if f.pull == "missing" => None,
            Err(err) => return Err(err.into()),
        },
        other => bail!("invalid --pull {other:?}: use missing, always or never"),
    };
    let img = match found {
        Some(img) => img,
        None => {
            if f.pull == "missing" {
                eprintln!("Unable to find image '{}' locally", f.image);
            }
            let r = images::pull_image(
                root,
                &PullArgs {
                    image: f.image.clone(),
                    platform: None,
                    quiet: false,
                    tls: Default::default(),
                },
            )?;
            store.find(&r.to_string())?
        }
    };
    let config = image::manifest::ImageConfig::parse(&store.read_blob(&img.id)?, &f.image)?;
    Ok((img.id.to_string(), config))
}

fn create_container(root: &Path, e: &Engine, f: &CreateFlags) -> Result<Container> {
    let req: CreateRequest = f.request();
    // Flags are checked before the image is looked at, so bad input never waits for a pull.
    if let Some(m) = &req.memory {
        engine::parse::size("--memory", m)?;
    }
    let (id, img) = resolve_image(root, e, f)?;
    let config = create::build_config(&req, &id, &img)?;
    Ok(create::create(e, req.name.as_deref(), config)?)
}

pub fn run(root: &Path, a: RunArgs) -> Result<i32> {
    let e = open(root)?;
    if a.detach && a.create.rm && a.create.restart.as_deref().is_some_and(|r| r != "no") {
        bail!("conflicting options: --restart and --rm cannot be used together");
    }
    let ct = create_container(root, &e, &a.create)?;
    if a.detach {
        if let Err(err) = lifecycle::start_detached(&e, &ct) {
            if ct.config.auto_remove {
                let _ = remove::purge(&e, &ct, true);
            }
            return Err(err.into());
        }
        println!("{}", ct.id);
        return Ok(0);
    }
    Ok(lifecycle::run_attached(&e, &ct)?)
}

pub fn create(root: &Path, a: CreateArgs) -> Result<i32> {
    let e = open(root)?;
    let ct = create_container(root, &e, &a.create)?;
    println!("{}", ct.id);
    Ok(0)
}

/// Run `f` on every named container, printing each name done; errors are printed per container
/// and make the exit code 1, as Docker's.
fn each(e: &Engine, names: &[String], mut f: impl FnMut(&Container) -> Result<()>) -> Result<i32> {
    let mut code = 0;
    for n in names {
        match e.find(n).map_err(anyhow::Error::from).and_then(|c| f(&c)) {
            Ok(()) => println!("{n}"),
            Err(err) => {
                eprintln!("lbox: {err:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn start(root: &Path, a: StartArgs) -> Result<i32> {
    let e = open(root)?;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("you cannot start and attach multiple containers at once");
        }
        let ct = e.find(&a.containers[0])?;
        if ct.state.is_active() {
            bail!(
                "container {} is already running; use: lbox logs -f {}",
                ct.name,
                ct.name
            );
        }
        return Ok(lifecycle::run_attached(&e, &ct)?);
    }
    each(&e, &a.containers, |c| Ok(lifecycle::start_detached(&e, c)?))
}

pub fn stop(root: &Path, a: StopArgs) -> Result<i32> {
    let e = open(root)?;
    let t = a.time.map(|t| t.max(0) as u64);
    each(&e, &a.containers, |c| Ok(lifecycle::stop(&e, c, t)?))
}

pub fn restart(root: &Path, a: StopArgs) -> Result<i32> {
    let e = open(root)?;
    let t = a.time.map(|t| t.max(0) as u64);
    each(&e, &a.containers, |c| {
        lifecycle::stop(&e, c, t)?;
        let now = e.find(&c.id)?;
        Ok(lifecycle::start_detached(&e, &now)?)
    })
}

pub fn kill(root: &Path, a: KillArgs) -> Result<i32> {
    let e = open(root)?;
    each(&e, &a.containers, |c| Ok(lifecycle::kill_container(&e, c, &a.signal)?))
}

pub fn rm(root: &Path, a: RmArgs) -> Result<i32> {
    let e = open(root)?;
    each(&e, &a.containers, |c| Ok(remove::remove(&e, c, a.force, a.volumes)?))
}

pub fn pause(root: &Path, a: NamesArgs) -> Result<i32> {
    let e = open(root)?;
    each(&e, &a.containers, |c| Ok(lifecycle::pause(&e, c)?))
}

pub fn unpause(root: &Path, a: NamesArgs) -> Result<i32> {
    let e = open(root)?;
    each(&e, &a.containers, |c| Ok(lifecycle::unpause(&e, c)?))
}

pub fn wait(root: &Path, a: NamesArgs) -> Result<i32> {
    let e = open(root)?;
    let mut code = 0;
    for n in &a.containers {
        match e.find(n).and_then(|c| lifecycle::wait(&e, &c)) {
            Ok(c) => println!("{c}"),
            Err(err) => {
                eprintln!("lbox: {err}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn rename(root: &Path, a: RenameArgs) -> Result<i32> {
    let e = open(root)?;
    let ct = e.find(&a.container)?;
    engine::create::check_name(&a.new_name)?;
    engine::db::rename(e.db(), &ct.id, &a.new_name)?;
    Ok(0)
}
