//! Namespaces: which ones to create with clone(2), which to join by path, and the id maps of a new
//! user namespace.

use std::os::fd::AsFd;
use std::path::PathBuf;

use nix::sched::{setns, unshare, CloneFlags};
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType as T, Spec};

use crate::error::{Context, Error, Result};
use crate::spec;

/// The namespace plan for one container.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Made by clone(2) itself.
    pub clone_flags: CloneFlags,
    /// Joined by the init, user namespace first.
    pub join: Vec<(T, PathBuf)>,
    /// Unshared by the init after the joins (cgroup always comes here, after the cgroup is joined).
    pub unshare: CloneFlags,
    /// A pid namespace to join: the runtime enters it before clone, since it only applies to children.
    pub join_pid: Option<PathBuf>,
    pub new_user: bool,
    pub new_net: bool,
    pub new_uts: bool,
    pub new_cgroup: bool,
}

fn flag(t: T) -> CloneFlags {
    CloneFlags::from_bits_retain(t as i32)
}

pub fn plan(s: &Spec) -> Result<Plan> {
    let nss = spec::namespaces(s);
    let mut p = Plan {
        clone_flags: CloneFlags::empty(),
        join: vec![],
        unshare: CloneFlags::empty(),
        join_pid: None,
        new_user: false,
        new_net: false,
        new_uts: false,
        new_cgroup: false,
    };
    let joins_any = nss.iter().any(|(t, path)| path.is_some() && *t != T::Pid);
    for (t, path) in nss {
        match (t, path) {
            (T::Time, _) => return Err(Error::Unsupported("the time namespace".into())),
            (T::Pid, Some(path)) => p.join_pid = Some(path),
            (t, Some(path)) => p.join.push((t, path)),
            (T::Cgroup, None) => {
                p.new_cgroup = true;
                p.unshare |= flag(T::Cgroup);
            }
            // With joins, a new user namespace must come after them (so the joined namespaces are
            // entered with host privileges) and everything new after it (so the user namespace owns
            // them): only the pid namespace can still be made by clone.
            (t, None) if joins_any && t != T::Pid => p.unshare |= flag(t),
            (t, None) => p.clone_flags |= flag(t),
        }
        match t {
            T::User => p.new_user = !p.join.iter().any(|(k, _)| *k == T::User),
            T::Network => p.new_net = !p.join.iter().any(|(k, _)| *k == T::Network),
            T::Uts => p.new_uts = !p.join.iter().any(|(k, _)| *k == T::Uts),
            _ => {}
        }
    }
    // The user namespace is joined first: the others may belong to it.
    p.join.sort_by_key(|(t, _)| if *t == T::User { 0 } else { 1 });
    Ok(p)
}

pub fn join(kind: T, path: &PathBuf) -> Result<()> {
    let f = std::fs::File::open(path).ctx(|| format!("open namespace {}", path.display()))?;
    setns(f.as_fd(), flag(kind)).ctx(|| format!("join {kind} namespace {}", path.display()))
}

impl Plan {
    /// The init was cloned into a new user namespace: it must wait for the runtime to write the
    /// id maps before it does anything (ToInit::Go). Otherwise it starts its setup at once.
    pub fn waits_for_maps(&self) -> bool {
        self.new_user && !self.unshare.contains(CloneFlags::CLONE_NEWUSER)
    }
}

pub fn unshare_rest(flags: CloneFlags) -> Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    unshare(flags).ctx(|| format!("unshare namespaces {flags:?}"))
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write the id maps of the child's new user namespace (as the parent, from outside).
pub fn write_id_maps(pid: i32, s: &Spec) -> Result<()> {
    let linux = s.linux().as_ref();
    let uid = linux.and_then(|l| l.uid_mappings().clone()).unwrap_or_default();
    let gid = linux.and_then(|l| l.gid_mappings().clone()).unwrap_or_default();
    if uid.is_empty() || gid.is_empty() {
        return Err(Error::Invalid(
            "a new user namespace needs linux.uidMappings and linux.gidMappings".into(),
        ));
    }
    std::fs::write(format!("/proc/{pid}/gid_map"), map_text(&gid)).ctx(|| "write gid_map".into())?;
    std::fs::write(format!("/proc/{pid}/uid_map"), map_text(&uid)).ctx(|| "write uid_map".into())?;
    Ok(())
}

/// Bring up `lo` in a new network namespace, as runc does (ioctl: no netlink needed for one flag).
pub fn loopback_up() -> Result<()> {
    let sock = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx(|| "socket for loopback".into())?;
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        return Err(Error::Init(format!(
            "get lo flags: {}",
            std::io::Error::last_os_error()
        )));
    }
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        return Err(Error::Init(format!("bring lo up: {}", std::io::Error::last_os_error())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ns: &str) -> Spec {
        crate::spec::parse(
            std::path::Path::new("t"),
            &format!(r#"{{"ociVersion":"1.0.2","linux":{{"namespaces":{ns}}}}}"#),
        )
        .unwrap()
    }

    #[test]
    fn fast_path_clones_everything_but_cgroup() {
        let p = plan(&spec(
            r#"[{"type":"pid"},{"type":"mount"},{"type":"network"},{"type":"cgroup"}]"#,
        ))
        .unwrap();
        assert_eq!(
            p.clone_flags,
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET
        );
        assert_eq!(p.unshare, CloneFlags::CLONE_NEWCGROUP);
        assert!(p.new_net && p.new_cgroup && !p.new_user);
    }

    #[test]
    fn joins_move_new_namespaces_to_unshare() {
        let p = plan(&spec(
            r#"[{"type":"pid"},{"type":"mount"},{"type":"network","path":"/proc/1/ns/net"},{"type":"user"}]"#,
        ))
        .unwrap();
        assert_eq!(p.clone_flags, CloneFlags::CLONE_NEWPID);
        assert_eq!(p.unshare, CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER);
        assert_eq!(p.join.len(), 1);
        assert!(!p.new_net && p.new_user);
    }

    #[test]
    fn time_namespace_is_refused() {
        assert!(plan(&spec(r#"[{"type":"time"}]"#)).is_err());
    }
}
