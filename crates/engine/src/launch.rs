//! Starting a container's process: root filesystem mounted, generated files written, OCI spec
//! built and written as the bundle's config.json, then the runtime called in-process (or an
//! external runc-compatible runtime through its CLI). Shared by the monitor and foreground `run`.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::config::MountKind;
use crate::db::Container;
use crate::error::{Context, Error, Result};
use crate::spec::{self, HostMount};
use crate::{inroot, rootfs, Engine};

/// A started container process.
pub struct Launched {
    pub pid: i32,
    pub pid_start: u64,
    /// The pty master, when the container has a terminal.
    pub master: Option<OwnedFd>,
    /// The sockets holding its published host ports: dropped when it has exited.
    pub ports: Vec<OwnedFd>,
    /// A `--rm` container's mount and IPC namespaces, held open (see [`hold_namespaces`]).
    pub namespaces: Vec<OwnedFd>,
}

/// A prepared bundle: its directory, and the spec its config.json is written from (handed to
/// the built-in runtime as it is, rather than read back and parsed).
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: oci_spec::runtime::Spec,
    /// config.json's text, written by `launch`: for the built-in runtime, while the init sets up
    /// (nothing reads it before the container runs: `exec` and `inspect` do, later).
    config_json: Vec<u8>,
    /// The pooled network namespace the spec joins: claimed until the container has exited.
    pub netns: Option<crate::netpool::Claimed>,
}

/// Mount the root filesystem and write the bundle's hosts, hostname and resolv.conf (its
/// config.json is written by [`launch`]).
pub fn prepare(e: &Engine, ct: &Container) -> Result<Bundle> {
    let c = &ct.config;
    let dir = e.paths.container(&ct.id);
    rootfs::mount(e, &ct.id, &c.image_id, c.auto_remove)?;
    let root = inroot::open_root(&e.paths.rootfs(&ct.id))?;
    let user = spec::user::resolve(&root, &c.user)?;
    if !c.workdir.is_empty() {
        inroot::mkdir_all(&root, Path::new(&c.workdir))?;
    }
    let mut mounts = Vec::new();
    for m in &c.mounts {
        let mut options = Vec::new();
        let (source, kind) = match m.kind {
            MountKind::Bind => (PathBuf::from(&m.source), "bind"),
            MountKind::Volume => {
                let p = e.paths.volume(&m.source);
                if !p.is_dir() {
                    return Err(Error::Invalid(format!(
                        "volume {} of container {} is missing ({}); recreate it with: lbox volume create {}",
                        m.source,
                        ct.name,
                        p.display(),
                        m.source
                    )));
                }
                (p, "bind")
            }
            MountKind::Tmpfs => {
                options.extend(["nosuid", "nodev", "noexec"].map(String::from));
                (PathBuf::from("tmpfs"), "tmpfs")
            }
        };
        if kind == "bind" {
            options.push("rbind".into());
            if !m
                .options
                .iter()
                .any(|o| o.contains("shared") || o.contains("slave") || o.contains("private"))
            {
                options.push("rprivate".into());
            }
        }
        options.extend(m.options.iter().cloned());
        options.push(if m.readonly { "ro" } else { "rw" }.into());
        // Directory targets are made here, inside the container's root; a file bind mount's
        // target is left to the runtime, which makes a file to mount over.
        if m.kind == MountKind::Tmpfs || source.is_dir() {
            inroot::mkdir_all(&root, Path::new(&m.target))?;
        }
        mounts.push(HostMount {
            source,
            target: m.target.clone(),
            kind,
            options,
        });
    }
    rootfs::write_etc(&dir, c)?;
    let init = if c.init {
        Some(crate::init_program::ensure(&e.paths)?)
    } else {
        None
    };
    let joined = joined_network(e, ct)?;
    let netns = if crate::netpool::wanted(c) {
        crate::netpool::claim(&e.paths, &ct.id)
    } else {
        None
    };
    let netns_path = netns.as_ref().map(crate::netpool::Claimed::ns);
    let spec = spec::build(&spec::Inputs {
        id: &ct.id,
        config: c,
        user: &user,
        etc_dir: &dir,
        mounts: &mounts,
        rootfs: Path::new("rootfs"),
        init: init.as_deref(),
        join_net: joined.as_ref().map(|(ns, dir)| (ns.clone(), dir.as_path())),
        netns: netns_path.as_deref(),
    })?;
    // Kept for `exec` and for anyone inspecting the container; compact, as runc's tools write it.
    let config_json = serde_json::to_vec(&spec).map_err(|err| Error::Invalid(format!("spec: {err}")))?;
    let spec = serde_json::from_value(spec).map_err(|err| Error::Invalid(format!("spec: {err}")))?;
    Ok(Bundle {
        dir,
        spec,
        config_json,
        netns,
    })
}

/// Write the bundle's config.json (atomically: a reader sees the old file or the new one).
fn write_config(dir: &Path, text: &[u8]) -> Result<()> {
    let tmp = dir.join(".config.json.tmp");
    std::fs::write(&tmp, text).ctx(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("config.json")).ctx(|| format!("write {}", dir.display()))
}

/// `--network container:OTHER`: OTHER's network namespace and its directory (hosts,
/// resolv.conf). OTHER must be running.
fn joined_network(e: &Engine, ct: &Container) -> Result<Option<(PathBuf, PathBuf)>> {
    let Some(other) = ct.config.network.strip_prefix("container:") else {
        return Ok(None);
    };
    let o = crate::db::get(e.db(), other)?.ok_or_else(|| {
        Error::Invalid(format!(
            "container {} shares the network of container {other}, which no longer exists; recreate it",
            ct.name
        ))
    })?;
    let Some(pid) = o.running_pid() else {
        return Err(Error::Invalid(format!(
            "cannot join the network of container {}: it is not running; start it first with: lbox start {}",
            o.name, o.name
        )));
    };
    Ok(Some((
        PathBuf::from(format!("/proc/{pid}/ns/net")),
        e.paths.container(&o.id),
    )))
}

/// /dev/null, for standard streams the container does not get.
pub fn dev_null() -> Result<OwnedFd> {
    rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "open /dev/null".into())
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx(|| "pipe".into())
}

/// Start the container's process with `fds` as its standard streams and record it running,
/// owned by this process.
pub fn start_recorded(e: &Engine, ct: &Container, bundle: Bundle, fds: [Option<RawFd>; 3]) -> Result<Launched> {
    let l = with_stdio(fds, || launch(e, ct, bundle))??;
    crate::db::set_running(
        e.db(),
        ct,
        l.pid,
        l.pid_start,
        std::process::id() as i32,
        crate::time::now_ns(),
    )?;
    Ok(l)
}

/// Docker's exit codes when the program cannot run: 127 not found, 126 not executable.
pub(crate) fn classify(err: runtime::Error) -> Error {
    let msg = err.to_string();
    match exec_failure_code(&msg) {
        125 => Error::Runtime(err),
        code => Error::Exec { msg, code },
    }
}

/// 127 when a runtime's message says the program was not found, 126 when it could not be
/// executed, else 125.
pub(crate) fn exec_failure_code(msg: &str) -> i32 {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("not found") || lower.contains("no such file") || lower.contains("enoent") {
        127
    } else if lower.contains("permission denied") || lower.contains("eacces") || lower.contains("is a directory") {
        126
    } else {
        125
    }
}

/// Run `f` with fds 0, 1 and 2 replaced by `fds` (None keeps ours): the runtime's init inherits
/// the caller's standard streams.
pub fn with_stdio<T>(fds: [Option<RawFd>; 3], f: impl FnOnce() -> T) -> Result<T> {
    let mut saved: Vec<(RawFd, OwnedFd)> = Vec::new();
    for (target, fd) in fds.iter().enumerate() {
        let Some(fd) = fd else { continue };
        let target = target as RawFd;
        // Safety: target is 0, 1 or 2, which every process has open (or we open below).
        let keep = rustix::io::fcntl_dupfd_cloexec(unsafe { std::os::fd::BorrowedFd::borrow_raw(target) }, 3)
            .ctx(|| format!("save fd {target}"))?;
        dup2(*fd, target)?;
        saved.push((target, keep));
    }
    let out = f();
    for (target, keep) in saved {
        dup2(keep.as_raw_fd(), target)?;
    }
    Ok(out)
}

fn dup2(from: RawFd, to: RawFd) -> Result<()> {
    // Safety: plain dup2 of fds we own onto a standard stream.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(Error::Io {
            what: format!("dup2 {from} -> {to}"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Create and start the container's process with the built-in runtime. The forwarded signals
/// (runtime::container::forwarded_signals) must be blocked by the caller.
pub fn launch(e: &Engine, ct: &Container, bundle: Bundle) -> Result<Launched> {
    if let Some(rt) = &ct.config.runtime {
        write_config(&bundle.dir, &bundle.config_json)?;
        return crate::external::launch(e, ct, rt, &bundle.dir);
    }
    let store = e.runtime_store();
    // Left over from a monitor that died before it could clean up.
    if let Ok(rec) = store.load(&ct.id) {
        let _ = runtime::container::destroy(&store, &rec);
    }
    let opts = runtime::container::CreateOpts {
        id: ct.id.clone(),
        bundle: bundle.dir,
        own_console: ct.config.tty,
        ..Default::default()
    };
    // config.json is written and the network wired while the init sets up its mounts (attach
    // fails before anything is made when a host port is taken). A pooled namespace is wired
    // through its own path: the runtime calls this before the init has joined it.
    let mut ports = Vec::new();
    let mut hook_err: Option<(Error, String)> = None;
    let pooled = bundle.netns;
    let pooled_path = pooled.as_ref().map(crate::netpool::Claimed::ns);
    let (dir, config_json) = (opts.bundle.clone(), bundle.config_json);
    let created = runtime::container::create_with(&store, &opts, false, Some(bundle.spec), &mut |pid| {
        if let Err(err) = write_config(&dir, &config_json) {
            let msg = err.to_string();
            hook_err = Some((err, msg.clone()));
            return Err(runtime::Error::Container(msg));
        }
        let netns = match &pooled_path {
            Some(p) => p.clone(),
            None => PathBuf::from(format!("/proc/{pid}/ns/net")),
        };
        match crate::netconnect::attach(e, ct, &netns) {
            Ok(p) => {
                ports = p;
                Ok(())
            }
            Err(err) => {
                let msg = err.to_string();
                hook_err = Some((err, msg.clone()));
                Err(runtime::Error::Container(msg))
            }
        }
    });
    let c = match created {
        Ok(c) => c,
        Err(err) => {
            // The hook's own error, unless the runtime reported the init's instead.
            if let Some((own, msg)) = hook_err {
                if matches!(&err, runtime::Error::Container(m) if *m == msg) {
                    return Err(own);
                }
            }
            // The init failed after its network was wired: free its address and ports.
            let _ = crate::netconnect::detach(e, ct);
            return Err(classify(err));
        }
    };
    let pid = c.record.pid;
    let master = match &c.console {
        Some(sock) => match runtime::tty::receive_master(sock) {
            Ok(m) => Some(m),
            Err(err) => {
                abort(&store, &c.record);
                let _ = crate::netconnect::detach(e, ct);
                return Err(err.into());
            }
        },
        None => None,
    };
    if let Some(m) = &master {
        runtime::tty::inherit_size(m);
    }
    let namespaces = if ct.config.auto_remove {
        hold_namespaces(pid)
    } else {
        Vec::new()
    };
    if let Err(err) = c.start() {
        abort(&store, &c.record);
        let _ = crate::netconnect::detach(e, ct);
        return Err(classify(err));
    }
    // The pooled namespace stays claimed until the container has exited (see `Claimed::keep`).
    // A container that is not removed on exit refills the pool now; a `--rm` one does when its
    // files go to the trash.
    if let Some(p) = pooled {
        p.keep();
    }
    if !ct.config.auto_remove && crate::netpool::wanted(&ct.config) {
        crate::trash::tidy_in_background(crate::trash::Tidy {
            netns_refill: Some(&crate::netpool::dir(&e.paths)),
            ..Default::default()
        });
    }
    Ok(Launched {
        pid,
        pid_start: c.record.pid_start,
        master,
        ports,
        namespaces,
    })
}

/// The mount and IPC namespaces of the container's init (`pid`, not started yet), held open.
/// The last process of a namespace to exit tears it down in its exit: for the mount namespace,
/// one unmount per mount (~45 here) and the overlay; measured ~0.4 ms between the container's
/// exit and its reaping, which a foreground `run --rm` waits through. Held, they go when the
/// last descriptor is closed, which a `--rm` container's owner leaves to its background clone
/// (`trash::Tidy::namespaces`). Best effort: a namespace that cannot be opened is not held.
fn hold_namespaces(pid: i32) -> Vec<OwnedFd> {
    ["mnt", "ipc"]
        .iter()
        .filter_map(|ns| {
            let path = format!("/proc/{pid}/ns/{ns}");
            rustix::fs::open(
                path.as_str(),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok()
        })
        .collect()
}

/// Undo a half-started container: kill and reap its init, free its cgroup and runtime state.
fn abort(store: &runtime::state::Store, rec: &runtime::state::Record) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.pid), nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(rec.pid), None);
    let _ = runtime::container::destroy(store, rec);
}

/// After the container's init exited: free its network addresses, cgroup and runtime state.
pub fn release(e: &Engine, ct: &Container) -> Result<()> {
    release_with(e, ct, false).map(|_| ())
}

/// As [`release`], but its cgroup directories and runtime state are left to the caller, who
/// removes them in the background with its files (a `--rm` container's removal).
pub fn release_later(e: &Engine, ct: &Container) -> Result<Option<runtime::container::Leftovers>> {
    release_with(e, ct, true)
}

fn release_with(e: &Engine, ct: &Container, later: bool) -> Result<Option<runtime::container::Leftovers>> {
    crate::netconnect::detach(e, ct)?;
    // A `--rm` container's goes in the background, with its files (remove::discard).
    if !ct.config.auto_remove && crate::netpool::wanted(&ct.config) {
        crate::netpool::release_for(&crate::netpool::dir(&e.paths), &ct.id);
    }
    if let Some(rt) = &ct.config.runtime {
        return crate::external::delete(e, ct, rt).map(|()| None);
    }
    let store = e.runtime_store();
    match store.load(&ct.id) {
        Ok(rec) if later => Ok(runtime::container::destroy_later(&store, &rec)?),
        Ok(rec) => Ok(runtime::container::destroy(&store, &rec).map(|()| None)?),
        Err(runtime::Error::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// The exit code of a reaped process, as a shell reports it.
pub fn exit_code(st: nix::sys::wait::WaitStatus) -> Option<i32> {
    match st {
        nix::sys::wait::WaitStatus::Exited(_, c) => Some(c),
        nix::sys::wait::WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}
