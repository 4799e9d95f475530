//! `exec`: start another process inside a running container by joining its namespaces and cgroup.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::channel::{self, FromInit, ToInit};
use crate::container::{forwarded_signals, wait_foreground, write_pid_file};
use crate::error::{Context, Error, Result};
use crate::process::{self, Final};
use crate::state::{Status, Store};
use crate::{console, seccomp};

pub struct ExecOpts {
    pub id: String,
    pub process: Process,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub pidfd_socket: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
}

/// Namespace files in the order they are joined: user first (it owns the others), mount last
/// (joining it moves our root).
const ORDER: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn same_ns(pid: i32, name: &str) -> bool {
    let a = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
    let b = std::fs::metadata(format!("/proc/self/ns/{name}"));
    use std::os::unix::fs::MetadataExt;
    matches!((a, b), (Ok(a), Ok(b)) if a.ino() == b.ino() && a.dev() == b.dev())
}

/// Run the process in the container. Returns its exit code, or 0 at once with `detach`.
pub fn exec(store: &Store, o: &ExecOpts) -> Result<i32> {
    let rec = store.load(&o.id)?;
    let status = store.status(&rec);
    match status {
        Status::Stopped => {
            return Err(Error::BadState {
                id: o.id.clone(),
                status: status.to_string(),
                what: "cannot exec in a stopped container; start it first".into(),
            })
        }
        Status::Paused if !o.ignore_paused => {
            return Err(Error::BadState {
                id: o.id.clone(),
                status: status.to_string(),
                what: "cannot exec in a paused container; resume it first (or pass --ignore-paused)".into(),
            })
        }
        _ => {}
    }
    let p = &o.process;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::Invalid("exec needs a command to run".into()));
    }
    let terminal = p.terminal() == Some(true);
    if terminal && o.console_socket.is_none() {
        return Err(Error::Invalid("exec with a terminal needs --console-socket".into()));
    }
    let filter = match &rec.seccomp {
        Some(s) => Some(seccomp::compile_cached(s, Some(&store.seccomp_cache()))?),
        None => None,
    };
    let mut joins: Vec<(OwnedFd, CloneFlags)> = Vec::new();
    for (name, flag) in ORDER {
        if !same_ns(rec.pid, name) {
            let f = std::fs::File::open(format!("/proc/{}/ns/{name}", rec.pid))
                .ctx(|| format!("open {name} namespace of {}", o.id))?;
            joins.push((f.into(), flag));
        }
    }
    let console: Option<OwnedFd> = match &o.console_socket {
        Some(path) => Some(
            UnixStream::connect(path)
                .ctx(|| format!("connect to console socket {}", path.display()))?
                .into(),
        ),
        None => None,
    };
    if !same_ns(rec.pid, "pid") {
        let f = std::fs::File::open(format!("/proc/{}/ns/pid", rec.pid))
            .ctx(|| format!("open pid namespace of {}", o.id))?;
        nix::sched::setns(f, CloneFlags::CLONE_NEWPID).ctx(|| format!("join the pid namespace of {}", o.id))?;
    }
    let mut oldmask = SigSet::empty();
    let block = if o.detach { SigSet::empty() } else { forwarded_signals() };
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&block), Some(&mut oldmask))
        .ctx(|| "block signals".into())?;
    let (parent_end, child_end) = channel::pair()?;
    let trampoline = crate::trampoline::sealed()?;
    let agent = match &filter {
        Some(f) => f.connect_agent(serde_json::to_value(rec.oci_state(status)).unwrap_or_default())?,
        None => None,
    };
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::Sys {
            what: "fork".into(),
            errno: nix::Error::last(),
        });
    }
    if pid == 0 {
        drop(parent_end);
        let err = Child {
            chan: &child_end,
            joins: &joins,
            console_sock: console.as_ref(),
            filter: filter.as_ref(),
            process: p,
            oldmask,
            preserve_fds: o.preserve_fds,
            trampoline: &trampoline,
            agent,
            cgroup: &rec.cgroup,
        }
        .run();
        let _ = child_end.send(&FromInit::Failed(err.to_string()));
        unsafe { libc::_exit(1) }
    }
    drop(child_end);
    drop(console);
    let setup = (|| -> Result<()> {
        // The child moves itself in (v1, cheap) before it joins any namespace; otherwise we add it.
        if !rec.cgroup.can_join_self() {
            rec.cgroup.add_pid(pid)?;
        }
        parent_end.send(&ToInit::Go)?;
        match parent_end.recv::<FromInit>()? {
            None => Ok(()),
            Some(FromInit::Failed(m)) => Err(Error::Container(m)),
            Some(m) => Err(Error::Container(format!("unexpected message {m:?}"))),
        }
    })();
    if let Err(e) = setup {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
        return Err(e);
    }
    if let Some(pf) = &o.pid_file {
        write_pid_file(pf, pid)?;
    }
    if let Some(sock) = &o.pidfd_socket {
        crate::container::send_pidfd(sock, pid)?;
    }
    if o.detach {
        return Ok(0);
    }
    wait_foreground(pid)
}

/// What the forked exec child needs, everything prepared by the runtime before the fork.
struct Child<'a> {
    chan: &'a channel::End,
    joins: &'a [(OwnedFd, CloneFlags)],
    console_sock: Option<&'a OwnedFd>,
    filter: Option<&'a seccomp::Filter>,
    process: &'a Process,
    oldmask: SigSet,
    preserve_fds: i32,
    trampoline: &'a OwnedFd,
    agent: Option<seccomp::Agent>,
    cgroup: &'a crate::cgroups::CgroupPaths,
}

impl Child<'_> {
    fn run(self) -> Error {
        let Child {
            chan,
            joins,
            console_sock,
            filter,
            process: p,
            oldmask,
            preserve_fds,
            trampoline,
            agent,
            cgroup,
        } = self;
        let run = || -> Result<Final<'_>> {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).ctx(|| "set pdeathsig".into())?;
            // Not dumpable while we still run the runtime's code: the container cannot open our
            // /proc/PID/exe or mem without CAP_SYS_PTRACE (CVE-2019-5736).
            nix::sys::prctl::set_dumpable(false).ctx(|| "prctl dumpable".into())?;
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&oldmask), None)
                .ctx(|| "restore signal mask".into())?;
            match chan.recv::<ToInit>()? {
                Some(ToInit::Go) => {}
                _ => unsafe { libc::_exit(1) },
            }
            if cgroup.can_join_self() {
                cgroup.join_self()?;
            }
            for (fd, flag) in joins {
                nix::sched::setns(fd, *flag).ctx(|| format!("join namespace {flag:?}"))?;
            }
            match (p.terminal() == Some(true), console_sock) {
                (true, Some(sock)) => {
                    let pty = console::open(p)?;
                    console::send_master(std::os::fd::AsRawFd::as_raw_fd(sock), &pty.master)?;
                    console::become_controlled(&pty.slave)?;
                }
                _ => {
                    let _ = nix::unistd::setsid();
                }
            }
            process::rlimits(p)?;
            process::io_priority(p)?;
            crate::lsm::apparmor_on_exec(p.apparmor_profile().as_deref())?;
            let (program, env) = process::program(p)?;
            nix::sys::prctl::set_pdeathsig(None).ctx(|| "clear pdeathsig".into())?;
            Ok(Final {
                process: p,
                program,
                env,
                seccomp: filter,
                setgroups_denied: false,
                preserve_fds,
                agent,
                trampoline: Some(trampoline),
            })
        };
        match run() {
            Ok(f) => f.run(),
            Err(e) => e,
        }
    }
}

/// Build the process for `exec` from flags, starting from the container's own process (as runc).
pub struct ExecArgs {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
}

pub fn process_from_args(base: Option<&Process>, a: &ExecArgs) -> Result<Process> {
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(a.args.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        if !cwd.is_absolute() {
            return Err(Error::Invalid(format!(
                "--cwd {} must be an absolute path",
                cwd.display()
            )));
        }
        p.set_cwd(cwd.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let uid: u32 = uid
            .parse()
            .map_err(|_| Error::Invalid(format!("--user {u:?}: expected uid[:gid] as numbers")))?;
        p.user_mut().set_uid(uid);
        if let Some(g) = gid {
            let gid: u32 = g
                .parse()
                .map_err(|_| Error::Invalid(format!("--user {u:?}: expected uid[:gid] as numbers")))?;
            p.user_mut().set_gid(gid);
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut().set_additional_gids(Some(a.additional_gids.clone()));
    }
    if !a.caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        let add = |set: &Option<oci_spec::runtime::Capabilities>| -> Result<oci_spec::runtime::Capabilities> {
            let mut s = set.clone().unwrap_or_default();
            for name in &a.caps {
                let cap = serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase()))
                    .map_err(|_| Error::Invalid(format!("--cap {name:?}: unknown capability")))?;
                s.insert(cap);
            }
            Ok(s)
        };
        c.set_bounding(Some(add(c.bounding())?));
        c.set_effective(Some(add(c.effective())?));
        c.set_permitted(Some(add(c.permitted())?));
        c.set_ambient(Some(add(c.ambient())?));
        p.set_capabilities(Some(c));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}
