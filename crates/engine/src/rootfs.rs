//! A container's root filesystem and generated files: the image mounted as overlay (its layers
//! read-only, the container's changes in containers/<id>/upper), and the hosts, hostname and
//! resolv.conf files bind-mounted over the image's.

use std::path::Path;

use crate::error::{Context, Result};
use crate::Engine;

fn is_mountpoint(p: &Path) -> bool {
    let Ok(md) = std::fs::metadata(p) else { return false };
    let Some(parent) = p.parent() else { return false };
    let Ok(pm) = std::fs::metadata(parent) else {
        return false;
    };
    use std::os::unix::fs::MetadataExt;
    md.dev() != pm.dev()
}

/// Mount the image at containers/<id>/rootfs unless it already is (a restart keeps the mount).
/// Mount the container's root filesystem. `throwaway` (a `--rm` container) makes the upper layer
/// volatile: nothing in it outlives the container, so its unmount need not wait for the disk.
pub fn mount(e: &Engine, id: &str, image_id: &str, throwaway: bool) -> Result<()> {
    let dir = e.paths.container(id);
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
    if is_mountpoint(&merged) {
        return Ok(());
    }
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
    }
    let store = e.images()?;
    let digest: image::Digest = image_id.parse()?;
    let init = init_layer(e)?;
    let upper = image::overlay::Upper {
        dir: &upper,
        work: &work,
        volatile: throwaway,
    };
    store.mount_with_top(&digest, Some(&init), &merged, Some(upper))?;
    Ok(())
}

/// The layer every container gets above its image (Docker's "-init" layer): the directories
/// and files the runtime mounts over. With them present in a lower layer, a start creates
/// nothing in the container's upper directory, and removing it has nothing to delete there.
fn init_layer(e: &Engine) -> Result<std::path::PathBuf> {
    let dir = e.paths.root.join("init-layer");
    if dir.join("etc/resolv.conf").exists() {
        return Ok(dir);
    }
    let tmp = e.paths.root.join(format!("init-layer.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    use std::os::unix::fs::PermissionsExt;
    for (d, mode) in [("dev", 0o755), ("proc", 0o555), ("sys", 0o555), ("etc", 0o755)] {
        let p = tmp.join(d);
        std::fs::create_dir_all(&p).ctx(|| format!("create {}", p.display()))?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).ctx(|| format!("chmod {}", p.display()))?;
    }
    for f in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        let p = tmp.join(f);
        std::fs::write(&p, "").ctx(|| format!("create {}", p.display()))?;
    }
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another process made it first.
        Err(_) if dir.join("etc/resolv.conf").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(err) => Err(err).ctx(|| format!("create {}", dir.display())),
    }
}

/// Unmount the root filesystem; nothing to do when it is not mounted.
pub fn unmount(e: &Engine, id: &str) -> Result<()> {
    unmount_at(&e.paths.rootfs(id))
}

pub fn unmount_at(merged: &Path) -> Result<()> {
    // A lazy unmount never fails on a busy mount (an exec'd process still leaving); the
    // container's mount namespace is gone by then anyway. EINVAL: nothing (more) mounted there.
    loop {
        match rustix::mount::unmount(merged, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => {}
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(err) => return Err(err).ctx(|| format!("unmount {}", merged.display())),
        }
    }
}

const HOSTS: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// A container's /etc/hosts: the loopback names, then `extra` (name, address) lines.
pub fn hosts_text(extra: &[(String, String)]) -> String {
    with_lines(HOSTS.to_string(), extra)
}

fn with_lines(mut h: String, extra: &[(String, String)]) -> String {
    for (name, ip) in extra {
        h.push_str(&format!("{ip}\t{name}\n"));
    }
    h
}

/// Write hosts, hostname and resolv.conf into the container's directory. With the host's network
/// the host's own files are used; otherwise resolv.conf is the host's without loopback resolvers
/// (they would be the container's own loopback), falling back to public ones as Docker does.
/// `--add-host` lines are added, and `--dns*` replace the host's resolv.conf settings. (On a
/// network, netconnect rewrites hosts with the container's address and its neighbours.)
pub fn write_etc(dir: &Path, c: &crate::config::ContainerConfig) -> Result<()> {
    let host_network = c.network == "host";
    let extra: Vec<(String, String)> = c
        .extra_hosts
        .iter()
        .filter(|(_, ip)| ip != crate::netflags::HOST_GATEWAY)
        .cloned()
        .collect();
    let base = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_else(|_| HOSTS.to_string())
    } else {
        HOSTS.to_string()
    };
    let hosts = with_lines(base, &extra);
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut resolv = if host_network {
        host_resolv
    } else {
        container_resolv(&host_resolv)
    };
    if !(c.dns.is_empty() && c.dns_search.is_empty() && c.dns_options.is_empty()) {
        resolv = override_resolv(&resolv, &c.dns, &c.dns_search, &c.dns_options);
    }
    for (name, text) in [
        ("hosts", hosts),
        ("hostname", format!("{}\n", c.hostname)),
        ("resolv.conf", resolv),
    ] {
        let p = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).ctx(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).ctx(|| format!("write {}", p.display()))?;
    }
    Ok(())
}

fn container_resolv(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut f = line.split_whitespace();
        if f.next() == Some("nameserver") {
            let ip = f.next().unwrap_or("");
            if ip.starts_with("127.") || ip == "::1" {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// resolv.conf with `--dns` servers, `--dns-search` domains and `--dns-option`s in place of
/// the base file's own.
fn override_resolv(base: &str, dns: &[String], search: &[String], options: &[String]) -> String {
    let mut out = String::new();
    for line in base.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        let replaced = (key == "nameserver" && !dns.is_empty())
            || ((key == "search" || key == "domain") && !search.is_empty())
            || (key == "options" && !options.is_empty());
        if !replaced {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    for d in dns {
        out.push_str(&format!("nameserver {d}\n"));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dns_flags_replace_the_hosts_settings() {
        let r = super::override_resolv(
            "search lan\nnameserver 10.0.0.2\noptions ndots:2\n",
            &["192.0.2.53".into()],
            &[],
            &["timeout:1".into()],
        );
        assert_eq!(r, "search lan\nnameserver 192.0.2.53\noptions timeout:1\n");
    }

    #[test]
    fn loopback_resolvers_are_dropped() {
        let r = super::container_resolv("search lan\nnameserver 127.0.0.53\n");
        assert!(r.contains("search lan") && !r.contains("127.0.0.53") && r.contains("8.8.8.8"));
        let r = super::container_resolv("nameserver 10.0.0.2\n");
        assert_eq!(r, "nameserver 10.0.0.2\n");
    }
}
