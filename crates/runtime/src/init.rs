//! The container's init: what the cloned child does, as a short list of named steps, until it
//! becomes the user's program.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::signal::{SigSet, SigmaskHow};
use oci_spec::runtime::Spec;

use crate::cgroups::CgroupPaths;
use crate::channel::{End, FromInit, ToInit};
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Kind};
use crate::namespaces::Plan;
use crate::process::{self, Final};
use crate::rootfs::{self, Rootfs};
use crate::seccomp::Filter;
use crate::{console, spec};

/// What the init does after an early lock-down (see `setup`): receive Start, report a failure,
/// allocate memory, write to stderr, close, exit, and exec through the trampoline.
const WAIT_AND_EXEC_SYSCALLS: &[&str] = &[
    "recvfrom",
    "sendto",
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "madvise",
    "futex",
    "write",
    "close",
    "exit",
    "exit_group",
    "execve",
    "execveat",
];

/// The init's way into its cgroup, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CgroupStep {
    /// The runtime is still making it.
    Pending,
    /// The runtime said it is ready (made, and joined when the runtime adds us).
    Ready,
    /// We are in it.
    Joined,
    /// ... and, with a new cgroup namespace, in that too.
    Entered,
}

/// How the init learns that it may exec the user's program.
pub enum StartGate {
    /// `create`: block opening the exec fifo for writing until `start` opens it for reading.
    Fifo(OwnedFd),
    /// `run`: wait for `ToInit::Start` on the channel.
    Channel,
}

pub struct Init<'a> {
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub plan: &'a Plan,
    pub cgroup: &'a CgroupPaths,
    pub chan: End,
    pub gate: StartGate,
    pub console_socket: Option<OwnedFd>,
    pub seccomp: Option<&'a Filter>,
    pub no_pivot: bool,
    pub preserve_fds: i32,
    pub sigmask: SigSet,
    /// The parent runs prestart/createRuntime hooks: stop for them.
    pub parent_hooks: bool,
    /// The container's record, for the state document hooks read on stdin.
    pub record: crate::state::Record,
    /// The CPUs to restore once the runtime is done with us (it may have moved us to another
    /// CPU to run beside it: spawn::spread).
    pub affinity: Option<nix::sched::CpuSet>,
    /// How far we are into our cgroup.
    pub cgroup_step: std::cell::Cell<CgroupStep>,
    /// The init moves itself into its v1 cgroups (fast); otherwise the runtime adds it.
    pub join_cgroup_self: bool,
    pub new_keyring: bool,
    pub trampoline: Option<OwnedFd>,
    /// `create`: the exec fifo, held open until the exec closes it (close-on-exec), so that `start`
    /// returns only once the program runs, or with the reason it did not.
    pub start_fifo: std::cell::RefCell<Option<std::fs::File>>,
}

impl Init<'_> {
    /// Run the init; never returns. Failures are sent to the runtime, then the init exits.
    pub fn main(self) -> ! {
        let err = self.steps();
        // Whoever is waiting gets the error: the runtime during setup, `start` after it (through
        // the exec fifo). Only when nobody listens does it go to stderr.
        let via_fifo = self.start_fifo.borrow_mut().take().is_some_and(|mut f| {
            use std::io::Write;
            f.write_all(format!("F{err}").as_bytes()).is_ok()
        });
        if !via_fifo && self.chan.send(&FromInit::Failed(err.to_string())).is_err() {
            eprintln!("lbox-runc: container init: {err}");
        }
        unsafe { libc::_exit(1) }
    }

    fn wait_for(&self, want: ToInit) -> Result<()> {
        loop {
            match self.chan.recv::<ToInit>()? {
                // The runtime makes our cgroup while we set up (v1: ~1 ms): it says so
                // whenever it is done.
                Some(ToInit::CgroupReady) if want != ToInit::CgroupReady => self.cgroup_step.set(CgroupStep::Ready),
                Some(m) if m == want => return Ok(()),
                Some(m) => return Err(Error::Init(format!("expected {want:?} from the runtime, got {m:?}"))),
                // The runtime is gone: nothing to report to.
                None => unsafe { libc::_exit(1) },
            }
        }
    }

    /// Be in the container's cgroup, and in a new cgroup namespace if the spec has one (rooted at
    /// the cgroup we are in when we make it). Done as late as the setup allows: until the
    /// first cgroup mount, hooks or the end of the setup, so that the runtime's making of the
    /// cgroup (v1: a directory per hierarchy, ~1 ms) overlaps the init's mounts.
    fn enter_cgroup(&self) -> Result<()> {
        if self.cgroup_step.get() == CgroupStep::Entered {
            return Ok(());
        }
        self.join_cgroup()?;
        if self.plan.new_cgroup {
            crate::namespaces::unshare_rest(nix::sched::CloneFlags::CLONE_NEWCGROUP)?;
        }
        self.cgroup_step.set(CgroupStep::Entered);
        Ok(())
    }

    /// Be in the container's cgroup (without the namespace).
    fn join_cgroup(&self) -> Result<()> {
        if self.cgroup_step.get() >= CgroupStep::Joined {
            return Ok(());
        }
        if self.cgroup_step.get() == CgroupStep::Pending {
            self.wait_for(ToInit::CgroupReady)?;
        }
        if let Some(mask) = &self.affinity {
            // Best effort, as the move was: the kernel refuses a mask outside our cpuset (v2, or
            // a runtime-added v1 init), and the cpuset's own mask is then the right one anyway.
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), mask);
        }
        if self.join_cgroup_self {
            self.cgroup.join_self()?;
        }
        self.cgroup_step.set(CgroupStep::Joined);
        Ok(())
    }

    fn steps(&self) -> Error {
        match self.setup().and_then(|f| f.exec()) {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    fn setup(&self) -> Result<Final<'_>> {
        let s = self.spec;
        let p = s.process().as_ref().ok_or_else(|| Error::Init("no process".into()))?;
        // Until we exec, we run the host's lbox binary: not dumpable, so nothing in the container can
        // open our /proc/PID/exe or mem without CAP_SYS_PTRACE (CVE-2019-5736).
        nix::sys::prctl::set_dumpable(false).ctx(|| "prctl dumpable".into())?;
        // If the runtime dies during setup, so do we (cleared once we are set up).
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).ctx(|| "set pdeathsig".into())?;
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.sigmask), None)
            .ctx(|| "restore signal mask".into())?;
        // Only id maps need waiting for: the cgroup is joined later (enter_cgroup), so the
        // init's setup runs on the other core while the runtime makes the cgroup.
        if self.plan.waits_for_maps() {
            self.wait_for(ToInit::Go)?;
        }
        let hooks = s.hooks().as_ref();
        let create_hooks = hooks.and_then(|h| h.create_container().as_deref()).unwrap_or(&[]);
        let start_hooks = hooks.and_then(|h| h.start_container().as_deref()).unwrap_or(&[]);
        // The state document (for our hooks and the seccomp agent) needs our host pid, which only
        // the host's /proc still shows: work it out now, and only when someone will read it.
        let wants_state =
            !create_hooks.is_empty() || !start_hooks.is_empty() || self.seccomp.is_some_and(|f| f.listener.is_some());
        let record = wants_state.then(|| {
            let mut r = self.record.clone();
            r.pid = std::fs::read_link("/proc/self")
                .ok()
                .and_then(|p| p.to_str()?.parse().ok())
                .unwrap_or(0);
            r
        });
        let state_json = record
            .as_ref()
            .map(|r| serde_json::to_vec(&r.oci_state(crate::state::Status::Created)).unwrap_or_default())
            .unwrap_or_default();
        self.enter_namespaces()?;
        if self.new_keyring {
            crate::lsm::join_session_keyring(&self.record.id)?;
        }
        self.set_identity()?;
        let enter_cgroup = || self.enter_cgroup();
        let rfs = Rootfs::open(
            s,
            &self.rootfs,
            self.plan.new_user,
            self.plan.new_cgroup,
            self.cgroup,
            &enter_cgroup,
        )?;
        rfs.mount_all()?;
        rfs.create_devices()?;
        // Hooks run in the container's cgroup (and see its cgroup namespace).
        self.enter_cgroup()?;
        if self.parent_hooks {
            self.chan.send(&FromInit::RunHooks)?;
            self.wait_for(ToInit::HooksDone)?;
        }
        hooks::run_all(Kind::CreateContainer, create_hooks, &state_json)?;
        let agent = match (self.seccomp, &record) {
            (Some(f), Some(r)) => {
                f.connect_agent(serde_json::to_value(r.oci_state(crate::state::Status::Running)).unwrap_or_default())?
            }
            _ => None,
        };
        rootfs::enter(&self.rootfs, self.no_pivot)?;
        // A missing cwd is made now, as root and before the root may turn read-only.
        crate::inroot::Root::open(std::path::Path::new("/"))?.mkdir_all(p.cwd(), 0o755)?;
        self.setup_terminal(p)?;
        rootfs::sysctls(s)?;
        rootfs::finalize(s)?;
        process::rlimits(p)?;
        process::io_priority(p)?;
        process::personality(s)?;
        self.oom_score_adj(p)?;
        let (program, env) = process::program(p)?;
        nix::sys::prctl::set_pdeathsig(None).ctx(|| "clear pdeathsig".into())?;
        // Locked down while the runtime records us ready, when nothing between that and the
        // exec needs privileges (start hooks, an AppArmor exec label, a seccomp agent, the exec
        // fifo's reopen) and the profile allows the little we still do (receive Start, report a
        // failure, allocate, exec). Then `start` waits only for the exec, not for the seccomp
        // load (~0.5 ms) and the capability and user switch.
        let early = matches!(self.gate, StartGate::Channel)
            && start_hooks.is_empty()
            && p.apparmor_profile().is_none()
            && agent.is_none()
            && s.linux()
                .as_ref()
                .and_then(|l| l.seccomp().as_ref())
                .is_none_or(|sc| crate::seccomp::allows_unconditionally(sc, WAIT_AND_EXEC_SYSCALLS));
        let fin = Final {
            process: p,
            program,
            env,
            seccomp: self.seccomp,
            setgroups_denied: false,
            preserve_fds: self.preserve_fds,
            agent,
            trampoline: self.trampoline.as_ref(),
        };
        self.chan.send(&FromInit::Ready)?;
        if early {
            fin.lock_down()?;
        }
        self.wait_start()?;
        if !early {
            crate::lsm::apparmor_on_exec(p.apparmor_profile().as_deref())?;
            hooks::run_all(Kind::StartContainer, start_hooks, &state_json)?;
            fin.lock_down()?;
        }
        Ok(fin)
    }

    fn enter_namespaces(&self) -> Result<()> {
        // The cgroup files are the host's paths: join before entering another mount, user or
        // cgroup namespace, where they may not resolve. Other joins (a network namespace from
        // the engine's pool, say) need not wait for the runtime to make the cgroup.
        let moves_view = self.plan.join.iter().any(|(k, _)| {
            use oci_spec::runtime::LinuxNamespaceType as T;
            matches!(k, T::Mount | T::User | T::Cgroup)
        });
        if moves_view {
            self.join_cgroup()?;
        }
        for (kind, path) in &self.plan.join {
            crate::namespaces::join(*kind, path)?;
        }
        let user_unshared = self.plan.unshare.contains(nix::sched::CloneFlags::CLONE_NEWUSER);
        if user_unshared {
            // Once in a new user namespace we may no longer write the host's cgroup files.
            self.join_cgroup()?;
        }
        // The cgroup namespace comes later, in enter_cgroup.
        crate::namespaces::unshare_rest(self.plan.unshare - nix::sched::CloneFlags::CLONE_NEWCGROUP)?;
        if user_unshared {
            self.chan.send(&FromInit::NeedMaps)?;
            self.wait_for(ToInit::MapsDone)?;
        }
        if self.plan.new_user {
            // Become root of the new user namespace (the creds still name the unmapped host root).
            nix::unistd::setresgid(0.into(), 0.into(), 0.into()).ctx(|| "setgid 0 in the user namespace".into())?;
            nix::unistd::setresuid(0.into(), 0.into(), 0.into()).ctx(|| "setuid 0 in the user namespace".into())?;
        }
        if self.plan.new_net {
            crate::namespaces::loopback_up()?;
        }
        Ok(())
    }

    fn set_identity(&self) -> Result<()> {
        let s = self.spec;
        if let Some(h) = s.hostname().as_deref().filter(|h| !h.is_empty()) {
            if !spec::has_namespace(s, oci_spec::runtime::LinuxNamespaceType::Uts) {
                return Err(Error::Init("cannot set the hostname without a UTS namespace".into()));
            }
            nix::unistd::sethostname(h).ctx(|| format!("set hostname {h}"))?;
        }
        if let Some(d) = s.domainname().as_deref().filter(|d| !d.is_empty()) {
            if !spec::has_namespace(s, oci_spec::runtime::LinuxNamespaceType::Uts) {
                return Err(Error::Init("cannot set the domainname without a UTS namespace".into()));
            }
            if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
                return Err(Error::Init(format!(
                    "set domainname {d}: {}",
                    std::io::Error::last_os_error()
                )));
            }
        }
        Ok(())
    }

    fn setup_terminal(&self, p: &oci_spec::runtime::Process) -> Result<()> {
        if p.terminal() != Some(true) {
            nix::unistd::setsid().ctx(|| "setsid".into())?;
            return Ok(());
        }
        let sock = self
            .console_socket
            .as_ref()
            .ok_or_else(|| Error::Init("terminal requested but no console socket".into()))?;
        let pty = console::open(p)?;
        // /dev/console is the terminal for programs that open it by name.
        if let Err(e) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/dev/console")
        {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(Error::Init(format!("create /dev/console: {e}")));
            }
        }
        nix::mount::mount(
            Some(pty.slave_path.as_str()),
            "/dev/console",
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .ctx(|| "bind the terminal on /dev/console".into())?;
        console::send_master(sock.as_raw_fd(), &pty.master)?;
        console::become_controlled(&pty.slave)
    }

    fn oom_score_adj(&self, p: &oci_spec::runtime::Process) -> Result<()> {
        // Lowering the score needs CAP_SYS_RESOURCE: only write when it changes something.
        if let Some(adj) = p.oom_score_adj() {
            let cur = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
            if cur.trim() != adj.to_string() {
                process::oom_score_adj(p)?;
            }
        }
        Ok(())
    }

    fn wait_start(&self) -> Result<()> {
        match &self.gate {
            StartGate::Channel => self.wait_for(ToInit::Start),
            StartGate::Fifo(fd) => {
                // Reopen the O_PATH fd for writing: blocks until `start` opens the fifo for reading.
                let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .ctx(|| "open the exec fifo".into())?;
                use std::io::Write;
                (&f).write_all(b"0").ctx(|| "write the exec fifo".into())?;
                *self.start_fifo.borrow_mut() = Some(f);
                Ok(())
            }
        }
    }
}
