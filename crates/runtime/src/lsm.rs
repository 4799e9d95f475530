//! Linux security modules: AppArmor profiles are applied where the host runs AppArmor; otherwise
//! (and for SELinux labels, which lbox-runc does not apply) the request is ignored with a warning.

use oci_spec::runtime::Spec;

use crate::error::{Context, Result};

pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").is_ok_and(|s| s.trim() == "Y")
}

/// Warn (once, at create) about labels this host cannot honour.
pub fn warn_unsupported(spec: &Spec) {
    let p = spec.process().as_ref();
    if p.and_then(|p| p.apparmor_profile().as_deref())
        .is_some_and(|a| !a.is_empty())
        && !apparmor_enabled()
    {
        eprintln!("lbox-runc: warning: process.apparmorProfile ignored: AppArmor is not enabled on this host");
    }
    let selinux = p
        .and_then(|p| p.selinux_label().as_deref())
        .is_some_and(|l| !l.is_empty())
        || spec
            .linux()
            .as_ref()
            .and_then(|l| l.mount_label().as_deref())
            .is_some_and(|l| !l.is_empty());
    if selinux {
        eprintln!("lbox-runc: warning: SELinux labels ignored: lbox-runc does not apply SELinux labels yet");
    }
    let mut ignored = Vec::new();
    if let Some(p) = p {
        if p.scheduler().is_some() {
            ignored.push("process.scheduler");
        }
        if p.exec_cpu_affinity().is_some() {
            ignored.push("process.execCPUAffinity");
        }
    }
    if let Some(l) = spec.linux() {
        if l.intel_rdt().is_some() {
            ignored.push("linux.intelRdt");
        }
        if l.memory_policy().is_some() {
            ignored.push("linux.memoryPolicy");
        }
        if l.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
            ignored.push("linux.netDevices");
        }
    }
    for field in ignored {
        eprintln!("lbox-runc: warning: {field} is not supported yet and was ignored");
    }
}

/// Ask AppArmor to confine our next exec with the profile (the user's program, not the runtime).
pub fn apparmor_on_exec(profile: Option<&str>) -> Result<()> {
    let Some(profile) = profile.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    if !apparmor_enabled() {
        return Ok(());
    }
    let attr = if std::path::Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(attr, format!("exec {profile}")).ctx(|| format!("set AppArmor profile {profile}"))
}

/// A fresh session keyring per container (as runc), so containers do not share the host's keys.
pub fn join_session_keyring(name: &str) -> Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let cname = std::ffi::CString::new(name).unwrap_or_default();
    let r = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, cname.as_ptr()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        // No keyrings in this kernel, or the user's key quota is spent: run without one, as runc does.
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS) | Some(libc::EDQUOT) | Some(libc::EACCES)
        ) {
            return Err(crate::error::Error::Init(format!("join a new session keyring: {e}")));
        }
    }
    Ok(())
}
