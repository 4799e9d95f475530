//! From a container's configuration to the OCI spec the runtime runs: Docker's defaults for
//! everything the user did not say, the image's settings under the user's flags.

pub mod defaults;
mod devices;
pub mod seccomp_file;
pub mod seccomp_profile;
pub mod user;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::config::ContainerConfig;
use crate::error::{Error, Result};

/// A mount with its host side resolved (volume names turned into their directories).
#[derive(Debug, Clone)]
pub struct HostMount {
    pub source: PathBuf,
    pub target: String,
    pub kind: &'static str,
    pub options: Vec<String>,
}

pub struct Inputs<'a> {
    pub id: &'a str,
    pub config: &'a ContainerConfig,
    pub user: &'a user::User,
    /// Directory holding the generated hosts, hostname and resolv.conf.
    pub etc_dir: &'a Path,
    pub mounts: &'a [HostMount],
    /// Bundle-relative or absolute root filesystem path.
    pub rootfs: &'a Path,
    /// The host's init program, for `--init` containers.
    pub init: Option<&'a Path>,
    /// `--network container:OTHER`: OTHER's network namespace, and the directory of its hosts
    /// and resolv.conf (which this container shares).
    pub join_net: Option<(PathBuf, &'a Path)>,
    /// A network namespace made ahead of time (`netpool`), joined instead of a new one.
    pub netns: Option<&'a Path>,
}

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process environment: the config's, with PATH, HOSTNAME, HOME and TERM filled in as Docker
/// fills them when absent.
pub fn environment(c: &ContainerConfig, u: &user::User) -> Vec<String> {
    let mut env = Vec::new();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&c.env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("HOSTNAME={}", c.hostname));
    if c.tty {
        env.push("TERM=xterm".into());
    }
    for e in &c.env {
        let k = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(k));
        env.push(e.clone());
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", if u.home.is_empty() { "/" } else { &u.home }));
    }
    env
}

pub fn build(i: &Inputs) -> Result<Value> {
    let c = i.config;
    let caps = defaults::effective_capabilities(c.privileged, &c.cap_add, &c.cap_drop).map_err(Error::Invalid)?;
    // A non-root user starts with no effective capabilities, as in Docker; the bounding set
    // still limits what setuid binaries can gain.
    let eff: Vec<&String> = if i.user.uid == 0 {
        caps.iter().collect()
    } else {
        Vec::new()
    };
    let mut argv = c.argv();
    if argv.is_empty() {
        return Err(Error::Invalid(
            "no command specified: the image has no Cmd or Entrypoint; give one after the image name".into(),
        ));
    }
    if i.init.is_some() {
        argv.splice(0..0, [crate::init_program::TARGET.to_string(), "--".into()]);
    }
    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": i.user.uid, "gid": i.user.gid},
        "args": argv,
        "env": environment(c, i.user),
        "cwd": if c.workdir.is_empty() { "/" } else { c.workdir.as_str() },
        "capabilities": {"bounding": caps, "effective": eff, "permitted": eff},
        "noNewPrivileges": c.no_new_privileges,
    });
    if !i.user.additional_gids.is_empty() {
        process["user"]["additionalGids"] = json!(i.user.additional_gids);
    }
    let mut mounts = kernel_mounts(c.privileged);
    if let Some(init) = i.init {
        mounts.push(json!({
            "destination": crate::init_program::TARGET, "type": "bind",
            "source": init, "options": ["bind", "ro", "nosuid", "nodev", "rprivate"],
        }));
    }
    for (name, file) in [
        ("hosts", "/etc/hosts"),
        ("hostname", "/etc/hostname"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        let dir = match &i.join_net {
            Some((_, other)) if name != "hostname" => *other,
            _ => i.etc_dir,
        };
        mounts.push(json!({
            "destination": file, "type": "bind",
            "source": dir.join(name), "options": ["rbind", "rprivate"],
        }));
    }
    for m in i.mounts {
        mounts.push(json!({
            "destination": m.target, "type": m.kind, "source": m.source, "options": m.options,
        }));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    match &i.join_net {
        Some((netns, _)) => namespaces.push(json!({"type": "network", "path": netns})),
        None if c.network != "host" => match i.netns {
            Some(p) => namespaces.push(json!({"type": "network", "path": p})),
            None => namespaces.push(json!({"type": "network"})),
        },
        None => {}
    }
    let mut resources = json!({"devices": [{"allow": c.privileged, "access": "rwm"}]});
    if let Some(m) = c.resources.memory {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(n) = c.resources.nano_cpus {
        let period: i64 = 100_000;
        resources["cpu"] = json!({"quota": n * period / 1_000_000_000, "period": period});
    }
    if let Some(p) = c.resources.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    if !c.resources.block_io.is_empty() {
        resources["blockIO"] = crate::blkio::spec(&c.resources.block_io);
    }
    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
    });
    if !c.privileged {
        linux["maskedPaths"] = json!(defaults::MASKED_PATHS);
        linux["readonlyPaths"] = json!(defaults::READONLY_PATHS);
        let seccomp = match c.seccomp.as_deref() {
            None => Some(seccomp_profile::docker_default(&caps)),
            Some("unconfined") => None,
            Some(text) => Some(seccomp_file::parse(text, &caps)?),
        };
        if let Some(s) = seccomp {
            linux["seccomp"] = serde_json::to_value(s).map_err(|e| Error::Invalid(format!("seccomp profile: {e}")))?;
        }
    } else {
        linux["devices"] = json!(devices::host_devices());
    }
    // Below the caller's own cgroup, in a parent that is kept between containers (making and
    // removing it in every v1 hierarchy at each run costs more than the container's own).
    let parent = std::env::var("LBOX_CGROUP_PARENT").unwrap_or_else(|_| "lbox".into());
    linux["cgroupsPath"] = json!(format!("{}/{}", parent.trim_end_matches('/'), i.id));
    let mut annotations = serde_json::Map::new();
    for (k, v) in &c.labels {
        annotations.insert(k.clone(), json!(v));
    }
    if c.init {
        annotations.insert("org.lockbox.init".into(), json!("true"));
    }
    Ok(json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": i.rootfs, "readonly": c.read_only},
        "hostname": c.hostname,
        "mounts": mounts,
        "linux": linux,
        "annotations": annotations,
    }))
}

/// /proc, a minimal /dev, /dev/pts, /dev/shm, /dev/mqueue, and read-only /sys and cgroups (both
/// writable with --privileged).
fn kernel_mounts(privileged: bool) -> Vec<Value> {
    let ro = if privileged { "rw" } else { "ro" };
    vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", ro]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", ro]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ContainerConfig {
        ContainerConfig {
            cmd: vec!["sh".into()],
            hostname: "abc".into(),
            network: "none".into(),
            env: vec!["PATH=/bin".into(), "A=1".into()],
            ..Default::default()
        }
    }

    fn inputs<'a>(c: &'a ContainerConfig, u: &'a user::User) -> Inputs<'a> {
        Inputs {
            id: "x",
            config: c,
            user: u,
            etc_dir: Path::new("/c"),
            join_net: None,
            netns: None,
            mounts: &[],
            rootfs: Path::new("rootfs"),
            init: None,
        }
    }

    fn root() -> user::User {
        user::User {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        }
    }

    #[test]
    fn init_runs_the_command_under_a_read_only_bind_of_the_init() {
        let u = root();
        let c = cfg();
        let mut i = inputs(&c, &u);
        i.init = Some(Path::new("/run/lbox/lbox-init"));
        let s = build(&i).expect("spec");
        assert_eq!(s["process"]["args"], json!(["/dev/init", "--", "sh"]));
        let m = s["mounts"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["destination"] == "/dev/init"))
            .expect("an init mount");
        assert_eq!(m["source"], "/run/lbox/lbox-init");
        assert!(m["options"].as_array().is_some_and(|o| o.contains(&json!("ro"))));
        assert_eq!(build(&inputs(&c, &u)).expect("spec")["process"]["args"], json!(["sh"]));
    }

    #[test]
    fn defaults_are_dockers() {
        let u = root();
        let c = cfg();
        let s = build(&inputs(&c, &u)).expect("spec");
        assert_eq!(
            s["process"]["capabilities"]["bounding"].as_array().map(Vec::len),
            Some(14)
        );
        assert!(s["linux"]["seccomp"].is_object());
        assert!(s["linux"]["maskedPaths"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("/proc/kcore"))));
        let env = s["process"]["env"].as_array().expect("env");
        assert!(env.contains(&json!("PATH=/bin")) && env.contains(&json!("HOME=/root")));
        assert!(s["linux"]["namespaces"]
            .as_array()
            .is_some_and(|n| n.contains(&json!({"type": "network"}))));
        let mut p = cfg();
        p.privileged = true;
        let s = build(&inputs(&p, &u)).expect("privileged");
        assert!(s["linux"]["seccomp"].is_null() && s["linux"]["maskedPaths"].is_null());
        let nr = user::User { uid: 1000, ..u.clone() };
        let s = build(&inputs(&c, &nr)).expect("non-root");
        assert_eq!(s["process"]["capabilities"]["effective"], json!([]));
        let mut none = cfg();
        none.cmd.clear();
        assert!(build(&inputs(&none, &u)).is_err());
    }
}
