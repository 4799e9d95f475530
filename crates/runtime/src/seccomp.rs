//! Seccomp: the spec's profile compiled with libseccomp. Compiled before the container is reported
//! ready (so a bad profile fails `create`), loaded when the init locks itself down: right before
//! the user process is exec'd, or, on the `run` path, while the runtime records the container
//! ready (see init::Init::setup).

use std::os::fd::{AsRawFd, RawFd};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterAttr, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompFilterFlag, LinuxSeccompOperator as Op,
};

use crate::error::{Error, Result};

fn action(a: A, errno_ret: Option<u32>) -> ScmpAction {
    let eperm = libc::EPERM;
    match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(errno_ret.map_or(eperm, |e| e as i32)),
        A::ScmpActTrace => ScmpAction::Trace(errno_ret.map_or(eperm as u16, |e| e as u16)),
        A::ScmpActAllow => ScmpAction::Allow,
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActNotify => ScmpAction::Notify,
    }
}

fn arch(a: Arch) -> Option<ScmpArch> {
    let name = serde_json::to_value(a)
        .ok()?
        .as_str()?
        .trim_start_matches("SCMP_ARCH_")
        .to_ascii_lowercase();
    Some(match name.as_str() {
        "x86" => ScmpArch::X86,
        "x86_64" => ScmpArch::X8664,
        "x32" => ScmpArch::X32,
        "arm" => ScmpArch::Arm,
        "aarch64" => ScmpArch::Aarch64,
        "mips" => ScmpArch::Mips,
        "mips64" => ScmpArch::Mips64,
        "mips64n32" => ScmpArch::Mips64N32,
        "mipsel" => ScmpArch::Mipsel,
        "mipsel64" => ScmpArch::Mipsel64,
        "mipsel64n32" => ScmpArch::Mipsel64N32,
        "ppc" => ScmpArch::Ppc,
        "ppc64" => ScmpArch::Ppc64,
        "ppc64le" => ScmpArch::Ppc64Le,
        "s390" => ScmpArch::S390,
        "s390x" => ScmpArch::S390X,
        "riscv64" => ScmpArch::Riscv64,
        _ => return None,
    })
}

fn op(o: Op, value: u64, value_two: Option<u64>) -> ScmpCompareOp {
    match o {
        Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
        Op::ScmpCmpLt => ScmpCompareOp::Less,
        Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        Op::ScmpCmpEq => ScmpCompareOp::Equal,
        Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        Op::ScmpCmpGt => ScmpCompareOp::Greater,
        Op::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.map_or(value, |_| value)),
    }
}

/// A compiled profile, ready to load: libseccomp's context, or the BPF program it generated for
/// the same profile earlier (the cache; generating it takes longer than the rest of a start).
pub struct Filter {
    ctx: Option<ScmpFilterContext>,
    bpf: Option<Vec<u8>>,
    /// SECCOMP_FILTER_FLAG_* for a raw load of `bpf`.
    flags: u32,
    pub notify: bool,
    /// The seccomp agent's socket (linux.seccomp.listenerPath) and its metadata string.
    pub listener: Option<std::path::PathBuf>,
    pub metadata: String,
}

/// A connection to the seccomp agent, made while the host's paths are still visible, and what to
/// tell it once the filter is loaded.
pub struct Agent {
    pub sock: std::os::unix::net::UnixStream,
    /// The OCI state of the container, embedded in the ContainerProcessState message.
    pub state: serde_json::Value,
}

impl Filter {
    /// Connect to the agent if the profile has one (call before pivot_root / joining the mount ns).
    pub fn connect_agent(&self, state: serde_json::Value) -> Result<Option<Agent>> {
        match &self.listener {
            Some(path) if self.notify => {
                let sock = std::os::unix::net::UnixStream::connect(path)
                    .map_err(|e| Error::Seccomp(format!("connect to the seccomp agent at {}: {e}", path.display())))?;
                Ok(Some(Agent { sock, state }))
            }
            _ => Ok(None),
        }
    }

    /// Load the filter; with an agent, hand it the notification fd (SCM_RIGHTS) together with the
    /// ContainerProcessState document of the runtime spec.
    pub fn load_for(&self, agent: Option<&Agent>) -> Result<()> {
        let fd = self.load()?;
        let (Some(fd), Some(agent)) = (fd, agent) else {
            return Ok(());
        };
        let msg = serde_json::json!({
            "ociVersion": crate::state::OCI_VERSION,
            "fds": ["seccompFd"],
            "pid": std::process::id(),
            "metadata": self.metadata,
            "state": agent.state,
        });
        let data = serde_json::to_vec(&msg).map_err(|e| Error::Seccomp(format!("encode agent message: {e}")))?;
        let fds = [fd];
        let iov = [std::io::IoSlice::new(&data)];
        let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
        let sent = nix::sys::socket::sendmsg::<()>(
            agent.sock.as_raw_fd(),
            &iov,
            &cmsg,
            nix::sys::socket::MsgFlags::empty(),
            None,
        );
        // The agent holds the listener now; our copy must not leak into the container.
        unsafe { libc::close(fd) };
        sent.map_err(|e| Error::Seccomp(format!("send the notification fd to the seccomp agent: {e}")))?;
        Ok(())
    }
}

/// Compile, or take the program compiled for an identical profile from `cache` (a directory
/// only root can write). Profiles with SCMP_ACT_NOTIFY always go through libseccomp, which
/// hands out the listener fd.
pub fn compile_cached(s: &LinuxSeccomp, cache: Option<&std::path::Path>) -> Result<Filter> {
    let json = serde_json::to_vec(s).map_err(|e| Error::Seccomp(format!("encode profile: {e}")))?;
    let uses_notify =
        s.default_action() == A::ScmpActNotify || s.syscalls().iter().flatten().any(|r| r.action() == A::ScmpActNotify);
    let Some(dir) = cache.filter(|_| !uses_notify) else {
        return compile(s);
    };
    let mut key_src = json;
    // Also names how `compile` builds programs ("tree"): a change there must miss the cache.
    key_src.extend_from_slice(format!("|{:?}|{}|tree", ScmpArch::native(), env!("CARGO_PKG_VERSION")).as_bytes());
    let key: String = ring::digest::digest(&ring::digest::SHA256, &key_src)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = dir.join(format!("{key}.bpf"));
    let flags = raw_flags(s);
    if let Ok(bpf) = std::fs::read(&path) {
        if !bpf.is_empty() && bpf.len() % 8 == 0 {
            return Ok(Filter {
                ctx: None,
                bpf: Some(bpf),
                flags,
                notify: false,
                listener: None,
                metadata: String::new(),
            });
        }
    }
    let f = compile(s)?;
    if let Some(ctx) = &f.ctx {
        // Best effort: a cache that cannot be written only costs speed.
        let _ = std::fs::create_dir_all(dir);
        let tmp = dir.join(format!(".{key}.{}", std::process::id()));
        if let Ok(file) = std::fs::File::create(&tmp) {
            if ctx.export_bpf(&file).is_ok() && std::fs::rename(&tmp, &path).is_ok() {
                return Ok(f);
            }
        }
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(f)
}

/// Whether every syscall in `names` is allowed by `s` whatever its arguments: allowed by default
/// and named in no rule, or named only in rules that allow it with no argument conditions.
pub fn allows_unconditionally(s: &LinuxSeccomp, names: &[&str]) -> bool {
    let rules = s.syscalls().as_deref().unwrap_or(&[]);
    names.iter().all(|name| {
        let mut named = rules.iter().filter(|r| r.names().iter().any(|n| n == name)).peekable();
        if named.peek().is_none() {
            return s.default_action() == A::ScmpActAllow;
        }
        named.all(|r| r.action() == A::ScmpActAllow && r.args().as_ref().is_none_or(|a| a.is_empty()))
    })
}

fn raw_flags(s: &LinuxSeccomp) -> u32 {
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
            _ => 0,
        };
    }
    flags
}

pub fn compile(s: &LinuxSeccomp) -> Result<Filter> {
    let e = |what: String| move |err: libseccomp::error::SeccompError| Error::Seccomp(format!("{what}: {err}"));
    let default = action(s.default_action(), s.default_errno_ret());
    let mut ctx = ScmpFilterContext::new(default).map_err(e("create filter".into()))?;
    // Syscalls named for another arch are not errors: profiles list them for every arch at once.
    ctx.set_filter_attr(ScmpFilterAttr::CtlNnp, 0)
        .map_err(e("clear nnp attr".into()))?;
    // A binary tree of syscall numbers instead of a linear chain: fewer instructions run per
    // syscall, and the kernel's per-syscall action cache, which emulates the filter once for
    // every syscall number at load, takes ~0.3 ms instead of 2-4 ms for Docker's profile.
    ctx.set_ctl_optimize(2).map_err(e("optimize filter".into()))?;
    for a in s.architectures().iter().flatten() {
        if let Some(arch) = arch(*a) {
            if arch != ScmpArch::native() {
                ctx.add_arch(arch).map_err(e(format!("add architecture {a:?}")))?;
            }
        }
    }
    for f in s.flags().iter().flatten() {
        match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                ctx.set_ctl_log(true).map_err(e("flag log".into()))?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true).map_err(e("flag spec_allow".into()))?;
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                ctx.set_ctl_tsync(true).map_err(e("flag tsync".into()))?;
            }
            _ => {}
        }
    }
    let mut notify = default == ScmpAction::Notify;
    for rule in s.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret());
        if act == ScmpAction::Notify {
            notify = true;
        }
        if act == default {
            continue;
        }
        let conds: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let cmp = op(a.op(), a.value(), a.value_two());
                let datum = if matches!(a.op(), Op::ScmpCmpMaskedEq) {
                    a.value_two().unwrap_or(0)
                } else {
                    a.value()
                };
                ScmpArgCompare::new(a.index() as u32, cmp, datum)
            })
            .collect();
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else { continue };
            if conds.is_empty() {
                ctx.add_rule(act, sc).map_err(e(format!("rule for {name}")))?;
            } else {
                // libseccomp wants one comparison per argument in a rule: split when an argument
                // repeats (runc does the same).
                let repeats = conds.len() > 1 && {
                    let mut idx: Vec<u32> = rule.args().iter().flatten().map(|a| a.index() as u32).collect();
                    idx.sort_unstable();
                    idx.windows(2).any(|w| w[0] == w[1])
                };
                if repeats {
                    for c in &conds {
                        ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                            .map_err(e(format!("rule for {name}")))?;
                    }
                } else {
                    ctx.add_rule_conditional(act, sc, &conds)
                        .map_err(e(format!("rule for {name}")))?;
                }
            }
        }
    }
    let listener = s.listener_path().clone();
    if notify && listener.is_none() {
        // Without a listener the notified syscalls would block forever: refuse rather than hang.
        return Err(Error::Seccomp(
            "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath (the agent that answers the notifications)".into(),
        ));
    }
    if listener.as_ref().is_some_and(|p| !p.is_absolute()) {
        return Err(Error::Seccomp(
            "linux.seccomp.listenerPath must be an absolute path".into(),
        ));
    }
    Ok(Filter {
        ctx: Some(ctx),
        bpf: None,
        flags: raw_flags(s),
        notify,
        listener,
        metadata: s.listener_metadata().clone().unwrap_or_default(),
    })
}

impl Filter {
    /// Load into the kernel. For SCMP_ACT_NOTIFY the returned fd is the listener.
    pub fn load(&self) -> Result<Option<RawFd>> {
        if let Some(bpf) = &self.bpf {
            return load_raw(bpf, self.flags).map(|()| None);
        }
        let Some(ctx) = &self.ctx else {
            return Err(Error::Seccomp("no filter to load".into()));
        };
        ctx.load().map_err(|e| Error::Seccomp(format!("load filter: {e}")))?;
        if self.notify {
            let fd = ctx
                .get_notify_fd()
                .map_err(|e| Error::Seccomp(format!("notify fd: {e}")))?;
            return Ok(Some(fd.as_raw_fd()));
        }
        Ok(None)
    }
}

/// Load a BPF program as libseccomp would have (it needs no_new_privs or CAP_SYS_ADMIN, like
/// libseccomp's load).
fn load_raw(bpf: &[u8], flags: u32) -> Result<()> {
    let prog = libc::sock_fprog {
        len: (bpf.len() / 8) as u16,
        filter: bpf.as_ptr() as *mut libc::sock_filter,
    };
    // Safety: `prog` points at `bpf`, which outlives the call; the kernel copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(Error::Seccomp(format!(
            "load filter: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("test profile")
    }

    #[test]
    fn unconditional_allows() {
        let allowlist = profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]},
                {"names":["write"],"action":"SCMP_ACT_ALLOW"}]}"#,
        );
        assert!(allows_unconditionally(&allowlist, &["read", "write"]));
        // Allowed only for some arguments, or not named under a denying default.
        assert!(!allows_unconditionally(&allowlist, &["read", "clone"]));
        assert!(!allows_unconditionally(&allowlist, &["recvfrom"]));
        let denylist = profile(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["recvfrom"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert!(allows_unconditionally(&denylist, &["sendto", "brk"]));
        assert!(!allows_unconditionally(&denylist, &["sendto", "recvfrom"]));
    }
}
