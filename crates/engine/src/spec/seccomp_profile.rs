//! Docker's default seccomp profile (moby profiles/seccomp/default.json), as an OCI LinuxSeccomp.
//!
//! Why: people move workloads from Docker to LockBox and expect the same syscalls to work (and
//! the same ones to fail, with the same errno). Rather than invent our own policy we reproduce
//! moby's default profile: deny with EPERM by default, a large allow list, a few rules that
//! filter on arguments, and extra syscalls that capabilities held by the container unlock.
//!
//! Source: moby/moby `profiles/seccomp/default_linux.go` (the version with the AF_VSOCK socket
//! rule, the CAP_BPF / CAP_PERFMON rules and `set_mempolicy_home_node`).
//!
//! Deliberate differences from moby:
//! - moby only allows `ptrace`, `process_vm_readv` and `process_vm_writev` on kernels >= 4.8; we
//!   allow them always, because every kernel we support is newer than that.
//! - We only fill in architectures for x86_64, aarch64, s390x and riscv64 hosts (moby's MIPS maps
//!   are left out). On other hosts the list stays empty, so the runtime uses the native arch only.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// errno returned for every syscall the profile does not allow.
const EPERM: u32 = 1;
/// errno returned for `clone3` without CAP_SYS_ADMIN, so that glibc falls back to `clone`
/// (whose flags we can inspect; `clone3` passes them in memory).
const ENOSYS: u32 = 38;
/// `socket(AF_VSOCK, ...)` is denied: vsock is not namespaced.
const AF_VSOCK: u64 = 40;
/// CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |
/// CLONE_NEWCGROUP. Without CAP_SYS_ADMIN, `clone` may not create new namespaces.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// `personality` personas moby allows: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and
/// 0xffffffff (query the current persona).
const PERSONALITY_ALLOWED: &[u64] = &[0x0, 0x0008, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// Syscalls allowed for every container, whatever its capabilities.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm",
    "bind", "brk",
    "capget", "capset", "chdir", "chmod", "chown", "chown32",
    "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
    "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old",
    "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
    "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
    "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
    "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
    "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
    "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc",
    "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64",
    "cachestat", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat",
    "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
    "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2",
    "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
    "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield",
    "seccomp", "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64",
    "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
    "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area",
    "set_tid_address", "setuid", "setuid32", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo",
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "utime", "utimensat",
    "utimensat_time64", "utimes",
    "vfork", "vmsplice",
    "wait4", "waitid", "waitpid", "write", "writev",
    // moby: only on kernel >= 4.8 (where ptrace can no longer bypass seccomp).
    "process_vm_readv", "process_vm_writev", "ptrace",
];

/// Extra syscalls allowed when the container holds a capability (moby's `includes.caps`).
/// A syscall may appear under several capabilities; any one of them unlocks it.
#[rustfmt::skip]
const CAP_SYSCALLS: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
            "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
            "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname",
            "setns", "syslog", "umount", "umount2", "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "init_module", "finit_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    ("CAP_SYS_TIME", &["settimeofday", "stime", "clock_settime", "clock_settime64"]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Syscalls moby allows only on some host architectures (moby's `includes.arches`).
fn arch_specific_syscalls() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        &["arch_prctl", "modify_ldt"]
    } else if cfg!(any(target_arch = "aarch64", target_arch = "arm")) {
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ]
    } else if cfg!(target_arch = "powerpc64") {
        &["sync_file_range2", "swapcontext"]
    } else if cfg!(target_arch = "s390x") {
        &["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]
    } else if cfg!(target_arch = "riscv64") {
        &["riscv_flush_icache"]
    } else {
        &[]
    }
}

/// The host architecture and the compat architectures it can run (moby's `archMap`).
fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else if cfg!(target_arch = "s390x") {
        vec![Arch::ScmpArchS390x, Arch::ScmpArchS390]
    } else if cfg!(target_arch = "riscv64") {
        vec![Arch::ScmpArchRiscv64]
    } else {
        Vec::new()
    }
}

/// Index of the `flags` argument of `clone`: s390 swaps the first two arguments.
fn clone_flags_arg_index() -> usize {
    if cfg!(target_arch = "s390x") {
        1
    } else {
        0
    }
}

/// Docker's default seccomp profile for a container whose effective capabilities are `caps`
/// (names such as `"CAP_SYS_ADMIN"`; matched without regard to case, `CAP_` prefix optional).
pub fn docker_default(caps: &[String]) -> LinuxSeccomp {
    let sys_admin = has_cap(caps, "CAP_SYS_ADMIN");

    // One rule for everything allowed without conditions, duplicates removed.
    let mut allowed: Vec<String> = Vec::with_capacity(ALLOWED.len() + 32);
    for name in ALLOWED.iter().chain(arch_specific_syscalls()) {
        push_unique(&mut allowed, name);
    }
    for (cap, names) in CAP_SYSCALLS {
        if has_cap(caps, cap) {
            for name in names.iter() {
                push_unique(&mut allowed, name);
            }
        }
    }

    let mut rules = vec![allow(allowed)];
    rules.push(allow_if(
        "socket",
        arg_cmp(0, AF_VSOCK, LinuxSeccompOperator::ScmpCmpNe),
    ));
    for &persona in PERSONALITY_ALLOWED {
        rules.push(allow_if(
            "personality",
            arg_cmp(0, persona, LinuxSeccompOperator::ScmpCmpEq),
        ));
    }
    if !sys_admin {
        // With CAP_SYS_ADMIN both are in the unconditional rule above.
        rules.push(allow_if(
            "clone",
            arg_masked_eq(clone_flags_arg_index(), CLONE_NAMESPACE_FLAGS, 0),
        ));
        rules.push(errno("clone3", ENOSYS));
    }

    let mut builder = LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .syscalls(rules);
    let arches = architectures();
    if !arches.is_empty() {
        builder = builder.architectures(arches);
    }
    builder.build().expect("static seccomp rule")
}

/// Whether `caps` holds `wanted` ("CAP_SYS_ADMIN"); accepts "cap_sys_admin" and "SYS_ADMIN" too.
fn has_cap(caps: &[String], wanted: &str) -> bool {
    let bare = wanted.strip_prefix("CAP_").unwrap_or(wanted);
    caps.iter().any(|c| {
        let c = c.trim();
        c.eq_ignore_ascii_case(wanted) || c.eq_ignore_ascii_case(bare)
    })
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

fn allow(names: Vec<String>) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(names)
        .action(LinuxSeccompAction::ScmpActAllow)
        .build()
        .expect("static seccomp rule")
}

fn allow_if(name: &str, arg: LinuxSeccompArg) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(vec![name.to_owned()])
        .action(LinuxSeccompAction::ScmpActAllow)
        .args(vec![arg])
        .build()
        .expect("static seccomp rule")
}

fn errno(name: &str, errno_ret: u32) -> LinuxSyscall {
    LinuxSyscallBuilder::default()
        .names(vec![name.to_owned()])
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno_ret)
        .build()
        .expect("static seccomp rule")
}

fn arg_cmp(index: usize, value: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op)
        .build()
        .expect("static seccomp rule")
}

/// `(arg & mask) == datum`. In OCI/libseccomp terms `value` is the mask, `valueTwo` the datum.
fn arg_masked_eq(index: usize, mask: u64, datum: u64) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .value(mask)
        .value_two(datum)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()
        .expect("static seccomp rule")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn rules_for<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        profile
            .syscalls()
            .iter()
            .flatten()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    fn allowed_unconditionally(profile: &LinuxSeccomp, name: &str) -> bool {
        rules_for(profile, name)
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().as_ref().is_none_or(|a| a.is_empty()))
    }

    #[test]
    fn default_action_is_errno_eperm() {
        let p = docker_default(&[]);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
    }

    #[test]
    fn basic_syscalls_allowed() {
        let p = docker_default(&[]);
        for name in ["read", "write", "execve", "exit_group", "ptrace"] {
            assert!(allowed_unconditionally(&p, name), "{name} should be allowed");
        }
    }

    #[test]
    fn mount_needs_cap_sys_admin() {
        let p = docker_default(&caps(&["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]));
        assert!(rules_for(&p, "mount").is_empty());
        assert!(!allowed_unconditionally(&p, "unshare"));

        let p = docker_default(&caps(&["CAP_SYS_ADMIN"]));
        assert!(allowed_unconditionally(&p, "mount"));
        assert!(allowed_unconditionally(&p, "unshare"));
    }

    #[test]
    fn clone_filters_namespace_flags_without_cap_sys_admin() {
        let p = docker_default(&[]);
        let rules = rules_for(&p, "clone");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action(), LinuxSeccompAction::ScmpActAllow);
        let args = rules[0].args().as_ref().expect("clone rule has args");
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), clone_flags_arg_index());
        assert_eq!(args[0].value(), 0x7E02_0000);
        assert_eq!(args[0].value_two(), Some(0));
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);

        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
    }

    #[test]
    fn clone_unrestricted_with_cap_sys_admin() {
        let p = docker_default(&caps(&["CAP_SYS_ADMIN"]));
        for name in ["clone", "clone3"] {
            let rules = rules_for(&p, name);
            assert!(!rules.is_empty(), "{name} should have a rule");
            for r in rules {
                assert_eq!(r.action(), LinuxSeccompAction::ScmpActAllow);
                assert!(r.args().as_ref().is_none_or(|a| a.is_empty()));
            }
        }
    }

    #[test]
    fn personality_and_socket_are_filtered() {
        let p = docker_default(&[]);
        assert!(!allowed_unconditionally(&p, "personality"));
        assert_eq!(rules_for(&p, "personality").len(), PERSONALITY_ALLOWED.len());
        let socket = rules_for(&p, "socket");
        assert_eq!(socket.len(), 1);
        let args = socket[0].args().as_ref().expect("socket rule has args");
        assert_eq!(args[0].value(), 40);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpNe);
    }

    #[test]
    fn capability_names_are_lenient() {
        let p = docker_default(&caps(&["sys_chroot", "cap_sys_time"]));
        assert!(allowed_unconditionally(&p, "chroot"));
        assert!(allowed_unconditionally(&p, "clock_settime"));
        assert!(!allowed_unconditionally(&p, "reboot"));
    }

    #[test]
    fn allow_list_has_no_duplicates() {
        let mut seen = HashSet::new();
        for name in ALLOWED {
            assert!(seen.insert(*name), "duplicate syscall {name} in ALLOWED");
        }
        // Every capability on at once: the merged unconditional rule is still duplicate-free.
        let all: Vec<String> = CAP_SYSCALLS.iter().map(|(c, _)| c.to_string()).collect();
        let p = docker_default(&all);
        let merged = &p.syscalls().as_ref().expect("rules")[0];
        let unique: HashSet<&String> = merged.names().iter().collect();
        assert_eq!(unique.len(), merged.names().len());
    }

    #[test]
    fn architectures_match_host() {
        let p = docker_default(&[]);
        if cfg!(target_arch = "x86_64") {
            let arches = p.architectures().as_ref().expect("arches");
            assert_eq!(arches[0], Arch::ScmpArchX86_64);
            assert!(arches.contains(&Arch::ScmpArchX86));
            assert!(arches.contains(&Arch::ScmpArchX32));
            assert!(allowed_unconditionally(&p, "arch_prctl"));
        }
    }
}
