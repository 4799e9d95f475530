//! runc's flags, spelled as runc spells them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "lbox-runc",
    about = "LockBox's OCI runtime (runc-compatible)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state (default /run/lbox-runc, or $XDG_RUNTIME_DIR/lbox-runc when not root)
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Log file for errors
    #[arg(long, global = true)]
    pub log: Option<String>,
    /// Log format: text or json
    #[arg(long = "log-format", global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    /// Debug output
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported yet)
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Rootless mode: true, false or auto
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Path to criu (checkpoint is not supported; accepted for compatibility)
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Deferred: only the invoked subcommand's arguments are built (as in the engine's CLI); `run`
// is the start path.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Create a container (its process waits for `start`)
    Create(CreateArgs),
    /// Start a created container
    Start(IdArg),
    /// Print a container's state as JSON
    State(IdArg),
    /// Send a signal to a container's init (or all its processes)
    Kill(KillArgs),
    /// Delete a container and free what it holds
    Delete(DeleteArgs),
    /// Create and start a container
    Run(RunArgs),
    /// Run a process in a running container
    Exec(ExecArgs),
    /// List a container's processes
    Ps(PsArgs),
    /// List containers
    List(ListArgs),
    /// Freeze a container's processes
    Pause(IdArg),
    /// Thaw a paused container
    Resume(IdArg),
    /// Change a container's resource limits
    Update(UpdateArgs),
    /// Print resource usage (and OOM events) of a container
    Events(EventsArgs),
    /// Write a default config.json
    Spec(SpecArgs),
    /// Print what this runtime supports, as JSON
    Features,
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json)
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to receive the terminal's pty master on
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket to send a pidfd of the container's init to
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// File to write the container's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N more file descriptors (from 3) into the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach: return once the container runs
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits (accepted)
    #[arg(long)]
    pub keep: bool,
    #[arg(long = "no-subreaper", hide = true)]
    pub no_subreaper: bool,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process in the container
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// Signal name or number (default SIGTERM)
    pub signal: Option<String>,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill the container first if it is running
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket to send a pidfd of the new process to
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Working directory inside the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variables (KEY=VALUE)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// Allocate a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// uid[:gid]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// The process as an OCI process.json
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Detach: return once the process runs
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// SELinux label (ignored: no SELinux here)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile (ignored: no AppArmor here)
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Add a capability
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Exec into a paused container too
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Join a sub-cgroup (accepted, not used)
    #[arg(long)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// The command and its arguments
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct PsArgs {
    /// table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    pub id: String,
    /// Arguments for ps(1) (default -ef)
    #[arg(allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// table or json
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print ids only
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// LinuxResources JSON file ("-" for stdin)
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k/m/g suffix)
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print stats once and exit
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Directory to write config.json into (`--rootless` makes a rootless spec)
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
}
