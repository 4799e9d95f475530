//! The runtime side of the lifecycle: create, start, run, kill, delete, pause, resume, update.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cgroups::CgroupPaths;
use crate::channel::{self, FromInit, ToInit};
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Kind};
use crate::init::{Init, StartGate};
use crate::spec::Bundle;
use crate::state::{self, Record, Status, Store};
use crate::{namespaces, seccomp};

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// Unix socket to send a pidfd of the container's init to (runc's --pidfd-socket).
    pub pidfd_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// Foreground `run` without a console socket: the runtime holds the terminal itself.
    pub own_console: bool,
}

/// A container whose init is set up and waiting to be started.
pub struct Created {
    pub record: Record,
    chan: channel::End,
    /// With `own_console`: where the init sends its pty master.
    pub console: Option<UnixStream>,
}

fn bad_state(id: &str, status: Status, what: &str) -> Error {
    Error::BadState {
        id: id.into(),
        status: status.to_string(),
        what: what.into(),
    }
}

/// Write the pid file atomically, with no newline (containerd parses it with Atoi).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, pid.to_string()).ctx(|| format!("write pid file {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(|| format!("write pid file {}", path.display()))
}

/// Send a pidfd of `pid` over the unix socket at `path` (SCM_RIGHTS), so a supervisor can wait
/// for and signal the process without pid-reuse races.
pub fn send_pidfd(path: &Path, pid: i32) -> Result<()> {
    let target = rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::Invalid(format!("bad pid {pid}")))?;
    let pidfd = rustix::process::pidfd_open(target, rustix::process::PidfdFlags::empty())
        .ctx(|| format!("pidfd_open {pid}"))?;
    let sock = UnixStream::connect(path).ctx(|| format!("connect to pidfd socket {}", path.display()))?;
    let fds = [pidfd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"pidfd")];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, nix::sys::socket::MsgFlags::empty(), None)
        .ctx(|| format!("send the pidfd to {}", path.display()))?;
    Ok(())
}

/// Signals a foreground `run` forwards to the container (SIGCHLD tells us it exited).
pub fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
        Signal::SIGALRM,
        Signal::SIGPIPE,
    ] {
        set.add(s);
    }
    set
}

/// Create the container: everything up to the point where only exec of the user's program is left.
/// With `fifo`, the init waits on the exec fifo for `start` (runc's create); without, on the channel
/// (`run`). Signals in `forwarded_signals` must already be blocked by a foreground caller.
pub fn create(store: &Store, o: &CreateOpts, fifo: bool) -> Result<Created> {
    create_with(store, o, fifo, None, &mut |_| Ok(()))
}

/// As [`create`]; `during_setup` runs here with the init's pid while the init sets up its mounts,
/// when the init was cloned into a new network namespace or joins one by path (the engine wires
/// the container's network then, in parallel, rather than after the init is ready; given a
/// path, it must work through that path, which the init may not have joined yet). A failure
/// undoes the create.
/// `spec` is the bundle's config.json already parsed (the engine wrote it from this spec): it
/// spares reading and parsing the file again.
pub fn create_with(
    store: &Store,
    o: &CreateOpts,
    fifo: bool,
    spec: Option<oci_spec::runtime::Spec>,
    during_setup: &mut dyn FnMut(i32) -> Result<()>,
) -> Result<Created> {
    let bundle = match spec {
        Some(spec) => Bundle::from_spec(&o.bundle, spec)?,
        None => Bundle::load(&o.bundle)?,
    };
    let process = bundle.process()?.clone();
    let terminal = process.terminal() == Some(true);
    check_terminal(terminal, o)?;
    let plan = namespaces::plan(&bundle.spec)?;
    crate::lsm::warn_unsupported(&bundle.spec);
    let filter = match bundle.spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(seccomp::compile_cached(s, Some(&store.seccomp_cache()))?),
        None => None,
    };
    let linux = bundle.spec.linux().as_ref();
    let cgroup = CgroupPaths::resolve(linux.and_then(|l| l.cgroups_path().as_deref()), &o.id)?;
    let dir = store.claim(&o.id)?;
    // Held until the container is fully created, so a concurrent delete waits for us. The init
    // closes its inherited copy at once: it must not keep the lock while it waits for `start`.
    let lock = store.lock(&o.id)?;
    let lock_fd = lock.as_ref().map(|f| f.as_raw_fd());
    let mut record = Record::from_spec(&o.id, &bundle.dir, &bundle.rootfs, &bundle.spec, cgroup.clone());
    // From here on, any failure must undo what was made.
    let made = (|| -> Result<Created> {
        let resources = linux.and_then(|l| l.resources().as_ref());
        // v2 clones straight into the cgroup, which must exist first. v1's directories (one per
        // hierarchy, ~1 ms in all) are made after the clone, while the init sets up its mounts.
        let create_late = !cgroup.is_v2();
        if !create_late {
            cgroup.create(resources)?;
        }
        let gate_fd = if fifo { Some(make_exec_fifo(&dir)?) } else { None };
        let (console, console_rx) = console_socket(o, terminal)?;
        let (parent_end, child_end) = channel::pair()?;
        let trampoline = crate::trampoline::sealed()?;
        // Cloned straight into a new user namespace, the init may not write the host's cgroup
        // files: the runtime attaches it then.
        let join_cgroup_self =
            cgroup.can_join_self() && !plan.clone_flags.contains(nix::sched::CloneFlags::CLONE_NEWUSER);
        let hooks = bundle.spec.hooks().as_ref();
        let prestart = hooks.and_then(|h| h.prestart().clone()).unwrap_or_default();
        let create_runtime = hooks.and_then(|h| h.create_runtime().clone()).unwrap_or_default();
        if let Some(p) = &plan.join_pid {
            namespaces::join(oci_spec::runtime::LinuxNamespaceType::Pid, p)?;
        }
        // The container's process starts with no signal blocked, whatever the caller blocked to
        // forward signals (a foreground run, a monitor): a blocked SIGTERM would make `stop`
        // wait for its timeout and kill.
        let oldmask = SigSet::empty();
        let cgroup_dir = match &cgroup.unified {
            Some(d) => Some(
                nix::fcntl::open(
                    d,
                    nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ctx(|| format!("open cgroup {}", d.display()))?,
            ),
            None => None,
        };
        let affinity = crate::spawn::spreadable_mask();
        // Safety: the runtime is single-threaded here, so the child may allocate and run Rust code.
        let (pid, in_cgroup) = match unsafe { crate::spawn::fork_into(plan.clone_flags, cgroup_dir.as_ref())? } {
            crate::spawn::Forked::Child => (0, false),
            crate::spawn::Forked::Parent { pid, in_cgroup } => (pid, in_cgroup),
        };
        if pid == 0 {
            drop(parent_end);
            if let Some(fd) = lock_fd {
                // Safety: our own copy of the lock file's fd, not used again in the child.
                unsafe { libc::close(fd) };
            }
            let init = Init {
                spec: &bundle.spec,
                rootfs: bundle.rootfs.clone(),
                plan: &plan,
                cgroup: &cgroup,
                chan: child_end,
                gate: match gate_fd {
                    Some(fd) => StartGate::Fifo(fd),
                    None => StartGate::Channel,
                },
                console_socket: console,
                seccomp: filter.as_ref(),
                no_pivot: o.no_pivot,
                preserve_fds: o.preserve_fds,
                sigmask: oldmask,
                parent_hooks: !prestart.is_empty() || !create_runtime.is_empty(),
                join_cgroup_self,
                // Moved, not cloned (the branch never returns): a copy here cost the init a
                // dozen page faults.
                record,
                affinity,
                cgroup_step: std::cell::Cell::new(crate::init::CgroupStep::Pending),
                new_keyring: !o.no_new_keyring,
                trampoline: Some(trampoline),
                start_fifo: std::cell::RefCell::new(None),
            };
            init.main();
        }
        if let Some(mask) = &affinity {
            crate::spawn::spread(pid, mask);
        }
        drop(cgroup_dir);
        drop(child_end);
        drop(trampoline);
        drop(gate_fd);
        drop(console);
        record.pid = pid;
        let handshake = Handshake {
            chan: &parent_end,
            pid,
            spec: &bundle.spec,
            record: &record,
            cgroup: &cgroup,
            plan: &plan,
        };
        let mut done = handshake.run(
            create_late.then_some(resources),
            !in_cgroup && !join_cgroup_self,
            &prestart,
            &create_runtime,
            during_setup,
        );
        if done.is_ok() {
            record.pid_start = state::proc_stat(pid).map_or(0, |(_, s)| s);
            done = publish(store, o, &record);
        }
        if let Err(e) = done {
            // Whatever failed after the clone, the init must not outlive it.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
            return Err(e);
        }
        Ok(Created {
            record,
            chan: parent_end,
            console: console_rx,
        })
    })();
    match made {
        Ok(c) => Ok(c),
        Err(e) => {
            let _ = cgroup.destroy();
            let _ = store.remove(&o.id);
            Err(e)
        }
    }
}

fn check_terminal(terminal: bool, o: &CreateOpts) -> Result<()> {
    if terminal && o.console_socket.is_none() && !o.own_console {
        return Err(Error::Invalid(
            "the process wants a terminal (process.terminal=true) but no --console-socket was given; pass one, or set terminal to false".into(),
        ));
    }
    if !terminal && o.console_socket.is_some() {
        return Err(Error::Invalid(
            "--console-socket given but process.terminal is false".into(),
        ));
    }
    Ok(())
}

/// The fifo `start` opens to release the init; the init holds an O_PATH handle on it.
fn make_exec_fifo(dir: &Path) -> Result<OwnedFd> {
    let path = dir.join(state::FIFO);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .ctx(|| format!("mkfifo {}", path.display()))?;
    nix::fcntl::open(
        &path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| "open exec fifo".into())
}

/// The init's end of the console socket (connected to --console-socket, or one end of a pair whose
/// other end a foreground `run` keeps).
fn console_socket(o: &CreateOpts, terminal: bool) -> Result<(Option<OwnedFd>, Option<UnixStream>)> {
    match &o.console_socket {
        Some(p) => {
            let s = UnixStream::connect(p).ctx(|| format!("connect to console socket {}", p.display()))?;
            Ok((Some(s.into()), None))
        }
        None if terminal => {
            let (ours, theirs) = UnixStream::pair().ctx(|| "socket pair for the terminal".into())?;
            Ok((Some(theirs.into()), Some(ours)))
        }
        None => Ok((None, None)),
    }
}

/// The runtime's side of the init's setup: id maps, cgroup, hooks, until Ready.
struct Handshake<'a> {
    chan: &'a channel::End,
    pid: i32,
    spec: &'a oci_spec::runtime::Spec,
    record: &'a Record,
    cgroup: &'a CgroupPaths,
    plan: &'a namespaces::Plan,
}

impl Handshake<'_> {
    /// `create`: the cgroup is still to be made, with these resources.
    fn run(
        &self,
        create: Option<Option<&oci_spec::runtime::LinuxResources>>,
        attach: bool,
        prestart: &[oci_spec::runtime::Hook],
        create_runtime: &[oci_spec::runtime::Hook],
        during_setup: &mut dyn FnMut(i32) -> Result<()>,
    ) -> Result<()> {
        let (cgroup, plan) = (self.cgroup, self.plan);
        if plan.waits_for_maps() {
            namespaces::write_id_maps(self.pid, self.spec)?;
            send_or_failure(self.chan, &ToInit::Go)?;
        }
        // The cgroup is made (and, when the init cannot join it itself, the init attached) while
        // the init sets up; it waits for CgroupReady before anything that needs the cgroup.
        if let Some(res) = create {
            cgroup.create(res)?;
        }
        if attach {
            cgroup.add_pid(self.pid)?;
        }
        send_or_failure(self.chan, &ToInit::CgroupReady)?;
        // The network namespace exists already, whether the init was cloned into it or joins it
        // by path: work on it need not wait for the init. (With a path, the hook must use that
        // path: the init may not have joined it yet.)
        let new_net = plan.clone_flags.contains(nix::sched::CloneFlags::CLONE_NEWNET)
            || plan
                .join
                .iter()
                .any(|(k, _)| *k == oci_spec::runtime::LinuxNamespaceType::Network);
        if new_net {
            if let Err(e) = during_setup(self.pid) {
                // An init that failed meanwhile (its namespace gone) is the cause: say its reason.
                if let Some(FromInit::Failed(m)) = self.chan.try_recv::<FromInit>() {
                    return Err(Error::Container(m));
                }
                return Err(e);
            }
        }
        loop {
            match self.chan.recv::<FromInit>()? {
                Some(FromInit::NeedMaps) => {
                    namespaces::write_id_maps(self.pid, self.spec)?;
                    send_or_failure(self.chan, &ToInit::MapsDone)?;
                }
                Some(FromInit::RunHooks) => {
                    let st = serde_json::to_vec(&self.record.oci_state(Status::Creating)).unwrap_or_default();
                    hooks::run_all(Kind::Prestart, prestart, &st)?;
                    hooks::run_all(Kind::CreateRuntime, create_runtime, &st)?;
                    send_or_failure(self.chan, &ToInit::HooksDone)?;
                }
                Some(FromInit::Ready) if new_net => return Ok(()),
                Some(FromInit::Ready) => return during_setup(self.pid),
                Some(FromInit::Failed(msg)) => return Err(Error::Container(msg)),
                None => return Err(Error::Container("the container init exited during setup".into())),
            }
        }
    }
}

/// Make the created container visible: state file, pid file, pidfd.
fn publish(store: &Store, o: &CreateOpts, record: &Record) -> Result<()> {
    store.save(record)?;
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, record.pid)?;
    }
    if let Some(sock) = &o.pidfd_socket {
        send_pidfd(sock, record.pid)?;
    }
    Ok(())
}

/// Send to the init; if it is gone, report why it went (its Failed message) rather than EPIPE.
fn send_or_failure(chan: &channel::End, msg: &ToInit) -> Result<()> {
    match chan.send(msg) {
        Ok(()) => Ok(()),
        Err(e) => match chan.recv::<FromInit>() {
            Ok(Some(FromInit::Failed(m))) => Err(Error::Container(m)),
            _ => Err(e),
        },
    }
}

fn poststart(rec: &Record) {
    let hooks = rec
        .hooks
        .as_ref()
        .and_then(|h| h.poststart().clone())
        .unwrap_or_default();
    if !hooks.is_empty() {
        let st = serde_json::to_vec(&rec.oci_state(Status::Running)).unwrap_or_default();
        if let Err(e) = hooks::run_all(Kind::Poststart, &hooks, &st) {
            eprintln!("lbox-runc: warning: {e}");
        }
    }
}

impl Created {
    /// Let the init exec the user's program (the `run` path, no fifo).
    pub fn start(&self) -> Result<()> {
        // The init may have failed while locking itself down after Ready: say why, not EPIPE.
        send_or_failure(&self.chan, &ToInit::Start)?;
        // The channel is close-on-exec: end-of-file means the exec happened.
        match self.chan.recv::<FromInit>()? {
            None => {
                poststart(&self.record);
                Ok(())
            }
            Some(FromInit::Failed(msg)) => Err(Error::Container(msg)),
            Some(m) => Err(Error::Container(format!("unexpected message {m:?}"))),
        }
    }
}

/// `start`: open the exec fifo, which releases the init into the user's program.
pub fn start(store: &Store, id: &str) -> Result<()> {
    let _lock = store.lock(id)?;
    let rec = store.load(id)?;
    let status = store.status(&rec);
    if status != Status::Created {
        return Err(bad_state(id, status, "only a created container can be started"));
    }
    let fifo = store.dir(id).join(state::FIFO);
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .ctx(|| format!("open exec fifo of {id}"))?;
    // The init writes "0" when released, then holds the fifo open until its exec closes it, or
    // writes "F<error>" and exits: read to end-of-file to know which.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(f.as_fd(), &mut buf) {
            Ok(0) if !got.is_empty() => break,
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            Ok(_) | Err(nix::Error::EAGAIN) => {
                if got.is_empty() && !state::pid_alive(rec.pid, rec.pid_start) {
                    return Err(Error::Container(format!(
                        "container {id}'s init exited before it could be started"
                    )));
                }
                let mut fds = [nix::poll::PollFd::new(f.as_fd(), nix::poll::PollFlags::POLLIN)];
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10u16));
            }
            Err(nix::Error::EINTR) => {}
            Err(e) => {
                return Err(Error::Sys {
                    what: format!("read exec fifo of {id}"),
                    errno: e,
                })
            }
        }
    }
    if let Some(msg) = got.strip_prefix(b"0F") {
        let _ = fs::remove_file(&fifo);
        return Err(Error::Container(String::from_utf8_lossy(msg).into_owned()));
    }
    let _ = fs::remove_file(&fifo);
    poststart(&rec);
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// Parse a signal as runc does: a number, or a name with or without SIG.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Invalid(format!("unknown signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<Signal>()
        .map_err(|_| Error::Invalid(format!("unknown signal {s:?}")))
}

pub fn kill_container(store: &Store, id: &str, sig: Signal, all: bool) -> Result<()> {
    let _lock = store.lock(id)?;
    let rec = store.load(id)?;
    let status = store.status(&rec);
    if status == Status::Stopped {
        if all {
            return Ok(());
        }
        return Err(bad_state(id, status, "container not running"));
    }
    if all {
        for pid in rec.cgroup.pids() {
            let _ = kill(Pid::from_raw(pid), sig);
        }
        if status == Status::Paused && sig == Signal::SIGKILL {
            rec.cgroup.freeze(false)?;
        }
        return Ok(());
    }
    kill(Pid::from_raw(rec.pid), sig).ctx(|| format!("send {sig} to container {id}"))
}

/// Wait for a process that is not our child to exit (pidfd works for any process).
fn wait_gone(pid: i32, start: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    if let Ok(fd) = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).unwrap_or(rustix::process::Pid::INIT),
        rustix::process::PidfdFlags::empty(),
    ) {
        if state::pid_alive(pid, start) {
            let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
            let ts = rustix::time::Timespec {
                tv_sec: timeout.as_secs() as i64,
                tv_nsec: 0,
            };
            let _ = rustix::event::poll(&mut fds, Some(&ts));
        }
    }
    while state::pid_alive(pid, start) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

pub fn delete(store: &Store, id: &str, force: bool) -> Result<()> {
    let _lock = store.lock(id)?;
    let rec = match store.load(id) {
        Ok(r) => r,
        Err(Error::NotFound(_)) if force => return store.remove(id),
        Err(e) => return Err(e),
    };
    let status = store.status(&rec);
    match status {
        Status::Stopped => {}
        Status::Created | Status::Creating => kill_and_wait(&rec)?,
        Status::Running | Status::Paused if force => kill_and_wait(&rec)?,
        _ => {
            return Err(bad_state(
                id,
                status,
                &format!(
                "cannot delete a container that is not stopped; stop it first or use: lbox-runc delete --force {id}"
            ),
            ))
        }
    }
    destroy(store, &rec)
}

fn kill_and_wait(rec: &Record) -> Result<()> {
    for pid in rec.cgroup.pids() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(rec.pid), Signal::SIGKILL);
    if rec.cgroup.is_frozen() {
        rec.cgroup.freeze(false)?;
    }
    if !wait_gone(rec.pid, rec.pid_start, Duration::from_secs(10)) {
        return Err(Error::Init(format!(
            "container {}'s init did not die after SIGKILL",
            rec.id
        )));
    }
    Ok(())
}

/// Free everything the container holds: remaining processes, cgroup, state; then poststop hooks.
pub fn destroy(store: &Store, rec: &Record) -> Result<()> {
    for pid in rec.cgroup.pids() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    rec.cgroup.destroy()?;
    finish_destroy(store, rec)
}

/// What [`destroy_later`] leaves to its caller, to remove in this order: a command killed in
/// between leaves the state, which `destroy` (or the engine's prune) then finishes from.
pub struct Leftovers {
    pub cgroups: Vec<PathBuf>,
    pub state: PathBuf,
}

/// As [`destroy`], but the container's cgroup directories and its state are left for the caller
/// to remove (the engine does that in the background: ~0.5 ms of a `run --rm` on cgroup v1's
/// many hierarchies). What is left in the cgroup is killed here. A cgroup whose parent the
/// runtime made is removed here, with the state, as `destroy` does: then None.
pub fn destroy_later(store: &Store, rec: &Record) -> Result<Option<Leftovers>> {
    if rec.cgroup.owns_parent {
        destroy(store, rec)?;
        return Ok(None);
    }
    for pid in rec.cgroup.pids() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    poststop(rec);
    Ok(Some(Leftovers {
        cgroups: rec.cgroup.dirs().into_iter().map(Path::to_path_buf).collect(),
        state: store.dir(&rec.id),
    }))
}

fn finish_destroy(store: &Store, rec: &Record) -> Result<()> {
    store.remove(&rec.id)?;
    poststop(rec);
    Ok(())
}

fn poststop(rec: &Record) {
    let hooks = rec
        .hooks
        .as_ref()
        .and_then(|h| h.poststop().clone())
        .unwrap_or_default();
    if !hooks.is_empty() {
        let st = serde_json::to_vec(&rec.oci_state(Status::Stopped)).unwrap_or_default();
        if let Err(e) = hooks::run_all(Kind::Poststop, &hooks, &st) {
            eprintln!("lbox-runc: warning: {e}");
        }
    }
}

pub fn pause(store: &Store, id: &str) -> Result<()> {
    let _lock = store.lock(id)?;
    let rec = store.load(id)?;
    let status = store.status(&rec);
    if status != Status::Running && status != Status::Created {
        return Err(bad_state(id, status, "container not running"));
    }
    rec.cgroup.freeze(true)
}

pub fn resume(store: &Store, id: &str) -> Result<()> {
    let _lock = store.lock(id)?;
    let rec = store.load(id)?;
    let status = store.status(&rec);
    if status != Status::Paused {
        return Err(bad_state(id, status, "container not paused"));
    }
    rec.cgroup.freeze(false)
}

pub fn update(store: &Store, id: &str, res: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let _lock = store.lock(id)?;
    let rec = store.load(id)?;
    let status = store.status(&rec);
    if status == Status::Stopped {
        return Err(bad_state(id, status, "container not running"));
    }
    rec.cgroup.apply(res)
}

/// Foreground `run`: wait for the init, forwarding signals, and return its exit code.
/// Expects `forwarded_signals()` blocked since before the clone, so no SIGCHLD can be lost.
pub fn wait_foreground(pid: i32) -> Result<i32> {
    let set = forwarded_signals();
    loop {
        let sig = set.wait().ctx(|| "wait for signals".into())?;
        if sig != Signal::SIGCHLD {
            let _ = kill(Pid::from_raw(pid), sig);
            continue;
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => return Ok(code),
                Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => return Ok(128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(nix::Error::ECHILD) => break,
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    return Err(Error::Sys {
                        what: "waitpid".into(),
                        errno: e,
                    })
                }
            }
        }
    }
}

pub fn raw_fd(fd: &impl AsRawFd) -> i32 {
    fd.as_raw_fd()
}
