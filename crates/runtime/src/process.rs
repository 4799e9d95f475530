//! The last steps before the user's program runs, shared by the container's init and by `exec`:
//! rlimits, user and groups, working directory, capabilities, no_new_privs, seccomp, fds, execve.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process};

use crate::capabilities;
use crate::error::{Context, Error, Result};
use crate::seccomp::Filter;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn resource(t: PosixRlimitType) -> Option<Resource> {
    use PosixRlimitType as T;
    Some(match t {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

pub fn rlimits(p: &Process) -> Result<()> {
    for r in p.rlimits().iter().flatten() {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let res = resource(r.typ()).ok_or_else(|| Error::Init(format!("rlimit {name} is not known on Linux")))?;
        setrlimit(res, r.soft(), r.hard()).map_err(|e| {
            let hint = if e == nix::Error::EPERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE on the host)"
            } else {
                ""
            };
            Error::Init(format!(
                "set rlimit {name} to soft={} hard={}: {e}{hint}",
                r.soft(),
                r.hard()
            ))
        })?;
    }
    Ok(())
}

/// process.ioPriority with ioprio_set(2).
pub fn io_priority(p: &Process) -> Result<()> {
    use oci_spec::runtime::IOPriorityClass as C;
    let Some(io) = p.io_priority() else { return Ok(()) };
    let class: i64 = match io.class() {
        C::IoprioClassRt => 1,
        C::IoprioClassBe => 2,
        C::IoprioClassIdle => 3,
    };
    if !(0..8).contains(&io.priority()) {
        return Err(Error::Init(format!(
            "process.ioPriority.priority {} is out of range 0-7",
            io.priority()
        )));
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let value = (class << 13) | io.priority();
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, value) } != 0 {
        return Err(Error::Init(format!(
            "set io priority: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// linux.personality: the execution domain (LINUX or LINUX32) survives exec.
pub fn personality(spec: &oci_spec::runtime::Spec) -> Result<()> {
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    let Some(pers) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(());
    };
    let domain: libc::c_ulong = match pers.domain() {
        D::PerLinux => 0x0000,
        D::PerLinux32 => 0x0008,
    };
    if unsafe { libc::personality(domain) } == -1 {
        return Err(Error::Init(format!(
            "set personality: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

pub fn oom_score_adj(p: &Process) -> Result<()> {
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).ctx(|| format!("set oom_score_adj {adj}"))?;
    }
    Ok(())
}

/// Switch to the process's user, keeping capabilities across the uid change so the spec's sets can
/// be applied afterwards.
pub fn switch_user(p: &Process, userns_setgroups_denied: bool) -> Result<()> {
    let u = p.user();
    let uid = Uid::from_raw(u.uid());
    let gid = Gid::from_raw(u.gid());
    nix::sys::prctl::set_keepcaps(true).ctx(|| "prctl keepcaps".into())?;
    if !userns_setgroups_denied {
        let groups: Vec<Gid> = u
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).ctx(|| format!("setgroups {:?}", u.additional_gids()))?;
    }
    nix::unistd::setresgid(gid, gid, gid).ctx(|| format!("setgid {gid}"))?;
    nix::unistd::setresuid(uid, uid, uid).ctx(|| format!("setuid {uid}"))?;
    nix::sys::prctl::set_keepcaps(false).ctx(|| "prctl keepcaps".into())?;
    if let Some(mask) = u.umask() {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }
    Ok(())
}

/// chdir to the spec's cwd resolved inside the container root, refusing magic links such as
/// /proc/self/fd/N (CVE-2024-21626), and checking the result is really inside the root.
pub fn enter_cwd(cwd: &Path) -> Result<()> {
    let root = crate::inroot::Root::open(Path::new("/"))?;
    // runc creates a missing cwd.
    let fd = root.mkdir_all(cwd, 0o755)?;
    nix::unistd::fchdir(&fd).ctx(|| format!("chdir to {}", cwd.display()))?;
    let now = nix::unistd::getcwd().ctx(|| "getcwd".into())?;
    if !now.is_absolute() || now.starts_with("(unreachable)") {
        return Err(Error::Init(format!(
            "working directory {} is outside the container",
            cwd.display()
        )));
    }
    Ok(())
}

pub fn apply_caps(p: &Process) -> Result<()> {
    if let Some(c) = p.capabilities() {
        capabilities::apply_sets(c)?;
    }
    Ok(())
}

pub fn no_new_privs(p: &Process) -> Result<()> {
    if p.no_new_privileges() == Some(true) {
        nix::sys::prctl::set_no_new_privs().ctx(|| "set no_new_privs".into())?;
    }
    Ok(())
}

/// Mark every fd above `keep_below` close-on-exec, so nothing of the runtime's leaks into the
/// container (the /proc/self/fd/N escape of CVE-2024-21626 needs such a leaked fd).
pub fn cloexec_from(keep_below: RawFd) {
    // close_range(CLOSE_RANGE_CLOEXEC) is one syscall (Linux 5.11+).
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            keep_below as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r != 0 {
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<RawFd> = rd
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect();
            for fd in fds.into_iter().filter(|fd| *fd >= keep_below) {
                let _ = nix::fcntl::fcntl(
                    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
                );
            }
        }
    }
}

/// The environment to exec with: the spec's, plus HOME from the container's /etc/passwd when unset.
pub fn environment(p: &Process) -> Vec<String> {
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        let home = home_of(p.user().uid()).unwrap_or_else(|| "/".into());
        env.push(format!("HOME={home}"));
    }
    env
}

fn home_of(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
    })
}

/// The process's program (args[0] looked up with the container's PATH) and the environment it
/// will get, worked out once (HOME may need a read of /etc/passwd).
pub fn program(p: &Process) -> Result<(PathBuf, Vec<String>)> {
    let name = p
        .args()
        .as_deref()
        .and_then(|a| a.first())
        .ok_or_else(|| Error::Init("process.args is empty".into()))?;
    let env = environment(p);
    Ok((lookup(name, &env)?, env))
}

/// Find the program as execve would with PATH search, with the container's PATH.
pub fn lookup(prog: &str, env: &[String]) -> Result<PathBuf> {
    let is_exec = |p: &Path| {
        p.metadata().is_ok_and(|m| m.is_file()) && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
    };
    if prog.contains('/') {
        let p = PathBuf::from(prog);
        return match p.metadata() {
            Err(_) => Err(Error::Init(format!("exec: \"{prog}\": no such file or directory"))),
            Ok(m) if m.is_dir() => Err(Error::Init(format!("exec: \"{prog}\": is a directory"))),
            Ok(_) if !is_exec(&p) => Err(Error::Init(format!("exec: \"{prog}\": permission denied"))),
            Ok(_) => Ok(p),
        };
    }
    let path = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(prog);
        if is_exec(&cand) {
            return Ok(cand);
        }
    }
    Err(Error::Init(format!(
        "exec: \"{prog}\": executable file not found in $PATH"
    )))
}

pub fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter()
        .map(|s| {
            CString::new(s.as_bytes())
                .map_err(|_| Error::Init(format!("argument or variable {s:?} contains a NUL byte")))
        })
        .collect()
}

/// Everything after the root switch, in order, ending in execve. Returns only on failure.
pub struct Final<'a> {
    pub process: &'a Process,
    pub program: PathBuf,
    pub env: Vec<String>,
    pub seccomp: Option<&'a Filter>,
    pub setgroups_denied: bool,
    pub preserve_fds: i32,
    /// The seccomp agent to hand the notification fd to (SCMP_ACT_NOTIFY).
    pub agent: Option<crate::seccomp::Agent>,
    /// The sealed exec trampoline (CVE-2019-5736); `None` execs the program directly.
    pub trampoline: Option<&'a std::os::fd::OwnedFd>,
}

impl Final<'_> {
    pub fn run(&self) -> Error {
        match self.lock_down().and_then(|()| self.exec()) {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    /// Capabilities, seccomp, user, cwd, no_new_privs, close-on-exec of the inherited fds:
    /// everything before the exec. Afterwards the process may only do what the container's
    /// process may.
    pub fn lock_down(&self) -> Result<()> {
        let p = self.process;
        if let Some(c) = p.capabilities() {
            capabilities::apply_bounding(c)?;
        }
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we have it.
        let nnp = p.no_new_privileges() == Some(true);
        if !nnp {
            if let Some(f) = self.seccomp {
                f.load_for(self.agent.as_ref())?;
            }
        }
        switch_user(p, self.setgroups_denied)?;
        enter_cwd(p.cwd())?;
        apply_caps(p)?;
        no_new_privs(p)?;
        if nnp {
            if let Some(f) = self.seccomp {
                f.load_for(self.agent.as_ref())?;
            }
        }
        cloexec_from(3 + self.preserve_fds);
        Ok(())
    }

    /// execve the process (after `lock_down`). Returns only on failure.
    pub fn exec(&self) -> Result<std::convert::Infallible> {
        let p = self.process;
        let argv = cstrings(p.args().as_deref().unwrap_or(&[]))?;
        let envp = cstrings(&self.env)?;
        let prog = CString::new(self.program.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::Init("program path has a NUL".into()))?;
        if let Some(t) = self.trampoline {
            return Err(crate::trampoline::exec(t, &prog, &argv, &envp));
        }
        let e = nix::unistd::execve(&prog, &argv, &envp).unwrap_err();
        Err(Error::Init(format!("exec {}: {e}", self.program.display())))
    }
}
