//! The engine's command line (`lbox …`). Every command opens what it needs, does the work, and
//! exits: there is no daemon. Errors print as one line, `lbox: …`, and exit 125 as Docker's do.

mod attach;
mod build;
mod containers;
mod cp;
mod exec;
mod images;
mod inspect;
mod login;
mod logs;
mod network;
mod output;
mod port;
mod progress;
mod ps;
mod run_flags;
mod system;
mod template;

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "lbox",
    version,
    about = "LockBox: a daemonless container engine",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Where images and containers are stored.
    #[arg(long, global = true, env = "LBOX_ROOT", default_value = "/var/lib/lbox")]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Require HTTPS and verify certificates (default true; false allows HTTP and unverified HTTPS).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub tls_verify: Option<bool>,
    /// Directory holding <registry>/*.crt CA certificates.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

// Deferred: each subcommand's arguments are built only when it is the one invoked. Building
// all of them cost every command 1.3 ms of its start.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Create and run a new container from an image.
    Run(containers::RunArgs),
    /// Create a new container without starting it.
    Create(containers::CreateArgs),
    /// Start one or more stopped containers.
    Start(containers::StartArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Kill one or more running containers.
    Kill(containers::KillArgs),
    /// Restart one or more containers.
    Restart(containers::StopArgs),
    /// Remove one or more containers.
    Rm(containers::RmArgs),
    /// List containers.
    #[command(alias = "list")]
    Ps(ps::PsArgs),
    /// Fetch the logs of a container.
    Logs(logs::LogsArgs),
    /// Show low-level information on containers or images (JSON).
    Inspect(inspect::InspectArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(containers::NamesArgs),
    /// Pause all processes within containers.
    Pause(containers::NamesArgs),
    /// Unpause all processes within containers.
    Unpause(containers::NamesArgs),
    /// Rename a container.
    Rename(containers::RenameArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Attach to a detached container's input and output.
    Attach(attach::AttachArgs),
    /// Show the processes of a container.
    Top(exec::TopArgs),
    /// Show containers' resource usage.
    Stats(exec::StatsArgs),
    /// List a container's published ports.
    Port(port::PortArgs),
    /// Copy files between a container and the host.
    Cp(cp::CpArgs),
    /// Write a container's filesystem as a tar archive.
    Export(cp::ExportArgs),
    /// Print a shell completion script (bash, zsh or fish).
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(system::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage LockBox (prune, df, info).
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Show system-wide information.
    Info,
    /// Build an image from an app.lbox, Dockerfile or boxfile.toml.
    Build(build::BuildArgs),
    /// Download an image from a registry.
    Pull(images::PullArgs),
    /// Upload an image to a registry.
    Push(images::PushArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Remove one or more images.
    Rmi(images::RmiArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Show the steps an image was made of.
    History(images::HistoryArgs),
    /// Make a one-layer image from a root filesystem tarball (file, URL or - for stdin).
    Import(images::ImportArgs),
    /// Write images to a tar archive (docker-archive, or oci-archive with --format).
    Save(images::SaveArgs),
    /// Read images from an archive written by save (or by docker, podman or skopeo).
    Load(images::LoadArgs),
    /// Log in to a registry.
    Login(login::LoginArgs),
    /// Log out of a registry.
    Logout(login::LogoutArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The runc-compatible OCI runtime (also reachable as lbox-runc).
    #[command(disable_help_flag = true)]
    Runtime {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Print the version.
    Version,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCommand {
    Run(containers::RunArgs),
    Create(containers::CreateArgs),
    Start(containers::StartArgs),
    Stop(containers::StopArgs),
    Kill(containers::KillArgs),
    Restart(containers::StopArgs),
    #[command(alias = "remove")]
    Rm(containers::RmArgs),
    #[command(alias = "list", alias = "ps")]
    Ls(ps::PsArgs),
    Logs(logs::LogsArgs),
    Inspect(inspect::InspectArgs),
    Wait(containers::NamesArgs),
    Pause(containers::NamesArgs),
    Unpause(containers::NamesArgs),
    Rename(containers::RenameArgs),
    Exec(exec::ExecArgs),
    Attach(attach::AttachArgs),
    Top(exec::TopArgs),
    Stats(exec::StatsArgs),
    Port(port::PortArgs),
    Cp(cp::CpArgs),
    Export(cp::ExportArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCommand {
    /// Show low-level information on images (JSON).
    Inspect(images::InspectArgs),
    /// Show the history of an image.
    History(images::HistoryArgs),
    /// Remove unused images.
    Prune(images::PruneArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(images::ImagesArgs),
    /// Remove images.
    Rm(images::RmiArgs),
    /// Build an image.
    Build(build::BuildArgs),
    /// Download an image.
    Pull(images::PullArgs),
    /// Upload an image.
    Push(images::PushArgs),
    /// Name an image.
    Tag(images::TagArgs),
    /// Import a root filesystem tarball.
    Import(images::ImportArgs),
    /// Save images to an archive.
    Save(images::SaveArgs),
    /// Load images from an archive.
    Load(images::LoadArgs),
    /// Mount an image's root filesystem (writable overlay) and print where.
    Mount(images::MountArgs),
    /// Unmount what `image mount` mounted.
    #[command(alias = "umount")]
    Unmount(images::UnmountArgs),
}

pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lbox: {e:#}");
            e.downcast_ref::<engine::Error>().map_or(125, engine::Error::exit_code)
        }
    }
}

fn container(root: &std::path::Path, c: ContainerCommand) -> Result<i32> {
    match c {
        ContainerCommand::Run(a) => containers::run(root, a),
        ContainerCommand::Create(a) => containers::create(root, a),
        ContainerCommand::Start(a) => containers::start(root, a),
        ContainerCommand::Stop(a) => containers::stop(root, a),
        ContainerCommand::Kill(a) => containers::kill(root, a),
        ContainerCommand::Restart(a) => containers::restart(root, a),
        ContainerCommand::Rm(a) => containers::rm(root, a),
        ContainerCommand::Ls(a) => ps::ps(root, a),
        ContainerCommand::Logs(a) => logs::logs(root, a),
        ContainerCommand::Inspect(mut a) => {
            a.kind = Some("container".into());
            inspect::inspect(root, a)
        }
        ContainerCommand::Wait(a) => containers::wait(root, a),
        ContainerCommand::Pause(a) => containers::pause(root, a),
        ContainerCommand::Unpause(a) => containers::unpause(root, a),
        ContainerCommand::Rename(a) => containers::rename(root, a),
        ContainerCommand::Exec(a) => exec::exec_cmd(root, a),
        ContainerCommand::Attach(a) => attach::attach(root, a),
        ContainerCommand::Top(a) => exec::top(root, a),
        ContainerCommand::Stats(a) => exec::stats(root, a),
        ContainerCommand::Port(a) => port::port(root, a),
        ContainerCommand::Cp(a) => cp::cp(root, a),
        ContainerCommand::Export(a) => cp::export(root, a),
    }
}

fn run(cli: Cli) -> Result<i32> {
    let root = cli.root.clone();
    match cli.command {
        Command::Run(a) => containers::run(&root, a),
        Command::Create(a) => containers::create(&root, a),
        Command::Start(a) => containers::start(&root, a),
        Command::Stop(a) => containers::stop(&root, a),
        Command::Kill(a) => containers::kill(&root, a),
        Command::Restart(a) => containers::restart(&root, a),
        Command::Rm(a) => containers::rm(&root, a),
        Command::Ps(a) => ps::ps(&root, a),
        Command::Logs(a) => logs::logs(&root, a),
        Command::Inspect(a) => inspect::inspect(&root, a),
        Command::Wait(a) => containers::wait(&root, a),
        Command::Pause(a) => containers::pause(&root, a),
        Command::Unpause(a) => containers::unpause(&root, a),
        Command::Rename(a) => containers::rename(&root, a),
        Command::Exec(a) => exec::exec_cmd(&root, a),
        Command::Attach(a) => attach::attach(&root, a),
        Command::Top(a) => exec::top(&root, a),
        Command::Stats(a) => exec::stats(&root, a),
        Command::Port(a) => port::port(&root, a),
        Command::Cp(a) => cp::cp(&root, a),
        Command::Export(a) => cp::export(&root, a),
        Command::Completion { shell } => {
            use clap::CommandFactory;
            let sh = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(sh, &mut Cli::command(), "lbox", &mut std::io::stdout());
            Ok(0)
        }
        Command::Container(c) => container(&root, c),
        Command::Volume(c) => system::volume(&root, c),
        Command::Network(c) => network::main(&root, c),
        Command::System(c) => system::system(&root, c),
        Command::Info => system::system(&root, system::SystemCommand::Info),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(&root, a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => images::pull(&root, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => images::push(&root, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(&root, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(&root, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(&root, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => images::import(&root, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => images::save(&root, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => images::load(&root, a),
        Command::Image(ImageCommand::Inspect(a)) => images::inspect(&root, a),
        Command::Image(ImageCommand::History(a)) | Command::History(a) => images::history(&root, a),
        Command::Image(ImageCommand::Prune(a)) => images::prune(&root, a),
        Command::Image(ImageCommand::Mount(a)) => images::mount(&root, a),
        Command::Image(ImageCommand::Unmount(a)) => images::unmount(&root, a),
        Command::Login(a) => login::login(a),
        Command::Logout(a) => login::logout(a),
        Command::Runtime { args } => {
            let mut rest = vec![OsString::from("lbox runtime")];
            rest.extend(args);
            Ok(crate::runc::main(rest))
        }
        Command::Version => {
            println!("lbox version {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
    }
}
