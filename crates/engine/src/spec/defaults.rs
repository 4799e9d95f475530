//! Docker's secure defaults, as data: the capability set, the masked and read-only /proc and /sys
//! paths, and the standard kernel filesystems every container gets.

/// Docker's default capability set (moby oci/caps/defaults.go).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability the kernel knows (what --privileged and --cap-add ALL give).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Hidden from the container (moby oci/defaults.go).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Visible but read-only.
pub const READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// Turn a user's capability name (`NET_ADMIN`, `cap_net_admin`, `ALL`) into the kernel's name.
pub fn normalize_cap(name: &str) -> Result<String, String> {
    let up = name.to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(format!("unknown capability {name:?}"))
    }
}

/// Capabilities this process can hand on (its bounding set): a container cannot get more.
fn ours() -> Option<Vec<String>> {
    caps::read(None, caps::CapSet::Bounding)
        .ok()
        .map(|set| set.into_iter().map(|c| c.to_string()).collect())
}

/// `capabilities`, limited to what we have: implicit ones (defaults, --privileged, ALL) are
/// dropped quietly when missing, as Docker does; an explicit --cap-add of one is an error.
pub fn effective_capabilities(privileged: bool, add: &[String], drop: &[String]) -> Result<Vec<String>, String> {
    let mut caps = capabilities(privileged, add, drop)?;
    if let Some(have) = ours() {
        for a in add {
            let n = normalize_cap(a)?;
            if n != "ALL" && !have.contains(&n) {
                return Err(format!(
                    "cannot add capability {n}: lbox itself does not have it (it is not in this process's bounding set)"
                ));
            }
        }
        caps.retain(|c| have.contains(c));
    }
    Ok(caps)
}

/// The container's capability set: Docker's defaults (all of them when privileged), plus
/// --cap-add, minus --cap-drop (ALL allowed in both; drop wins over a default, add over a drop of
/// ALL, as Docker does).
pub fn capabilities(privileged: bool, add: &[String], drop: &[String]) -> Result<Vec<String>, String> {
    let add: Vec<String> = add.iter().map(|c| normalize_cap(c)).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop.iter().map(|c| normalize_cap(c)).collect::<Result<_, _>>()?;
    if privileged || add.iter().any(|c| c == "ALL") {
        let mut all: Vec<String> = ALL_CAPS.iter().map(|s| s.to_string()).collect();
        if !privileged {
            all.retain(|c| !drop.contains(c));
        }
        return Ok(all);
    }
    let mut caps: Vec<String> = if drop.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drop.contains(c))
            .collect()
    };
    for c in add {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_arithmetic() {
        let none: Vec<String> = Vec::new();
        let d = capabilities(false, &none, &none).expect("defaults");
        assert_eq!(d.len(), DEFAULT_CAPS.len());
        let c = capabilities(false, &["net_admin".into()], &["CHOWN".into()]).expect("add/drop");
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        let only = capabilities(false, &["KILL".into()], &["ALL".into()]).expect("drop all");
        assert_eq!(only, vec!["CAP_KILL".to_string()]);
        assert_eq!(
            capabilities(true, &none, &none).expect("privileged").len(),
            ALL_CAPS.len()
        );
        assert!(capabilities(false, &["FLY".into()], &none).is_err());
    }
}
