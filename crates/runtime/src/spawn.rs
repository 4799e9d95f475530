//! Making the container's init: clone(2) with the namespace flags, or clone3(2) straight into the
//! container's cgroup v2 directory, which spares the separate cgroup attach (a v1/v2 attach waits
//! for an RCU grace period; CLONE_INTO_CGROUP does not).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::{sched_getaffinity, sched_setaffinity, CloneFlags, CpuSet};
use nix::unistd::Pid;

use crate::error::{Error, Result};

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What `fork_into` returned.
pub enum Forked {
    Child,
    /// The child's pid, and whether it already sits in its cgroup.
    Parent {
        pid: i32,
        in_cgroup: bool,
    },
}

/// Fork with `flags`; with `cgroup` (a v2 directory) the child starts inside it when the kernel can.
///
/// # Safety
///
/// The caller must be single-threaded: the child runs on a copy of the caller's memory.
pub unsafe fn fork_into(flags: CloneFlags, cgroup: Option<&OwnedFd>) -> Result<Forked> {
    if let Some(dir) = cgroup {
        let mut args = CloneArgs {
            flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: dir.as_raw_fd() as u64,
            ..Default::default()
        };
        let r = libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        );
        match r {
            0 => return Ok(Forked::Child),
            p if p > 0 => {
                return Ok(Forked::Parent {
                    pid: p as i32,
                    in_cgroup: true,
                })
            }
            // Older kernels (no clone3, no CLONE_INTO_CGROUP): the classic way below.
            _ if matches!(
                nix::Error::last(),
                nix::Error::ENOSYS | nix::Error::E2BIG | nix::Error::EINVAL
            ) => {}
            _ => {
                return Err(Error::Sys {
                    what: format!("clone3 into the container's cgroup with {flags:?}"),
                    errno: nix::Error::last(),
                })
            }
        }
    }
    let r = libc::syscall(
        libc::SYS_clone,
        flags.bits() as libc::c_long | libc::SIGCHLD as libc::c_long,
        0,
        0,
        0,
        0,
    );
    match r {
        0 => Ok(Forked::Child),
        p if p > 0 => Ok(Forked::Parent {
            pid: p as i32,
            in_cgroup: false,
        }),
        _ => Err(Error::Sys {
            what: format!("clone with {flags:?}"),
            errno: nix::Error::last(),
        }),
    }
}

/// The CPUs this process may run on, when there is more than one: what a child moved by
/// [`spread`] must restore.
pub fn spreadable_mask() -> Option<CpuSet> {
    let mask = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let n = (0..CpuSet::count())
        .filter(|&c| mask.is_set(c).unwrap_or(false))
        .count();
    (n > 1).then_some(mask)
}

/// Move a just-forked child off the CPU we run on. The kernel queues a new child on its parent's
/// CPU (here 41 of 50 forks on 2 cores), where it waits until the parent sleeps; the runtime's
/// and the init's work after the clone are independent until the init needs its cgroup, so
/// they should run at once. The child restores `mask` itself once told to go on (after this
/// call, so the restore cannot be overtaken by it).
pub fn spread(child: i32, mask: &CpuSet) {
    // Safety: sched_getcpu has no preconditions.
    let here = unsafe { libc::sched_getcpu() };
    let Ok(here) = usize::try_from(here) else { return };
    let mut other = *mask;
    if other.unset(here).is_err() {
        return;
    }
    // Best effort: if it fails, the child merely runs after us.
    let _ = sched_setaffinity(Pid::from_raw(child), &other);
}
