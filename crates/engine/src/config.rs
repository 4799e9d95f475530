//! What a container is made of: everything `create` decided, stored as JSON in the state DB and
//! turned into an OCI spec at every start (so a restart gets the same container).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    /// The image as the user named it, and the ID it resolved to.
    pub image: String,
    pub image_id: String,
    /// The final entrypoint and command (image defaults already applied).
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub open_stdin: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    pub stop_timeout: Option<u64>,
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    #[serde(default)]
    pub resources: Resources,
    pub read_only: bool,
    #[serde(default)]
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    pub health: Option<HealthConfig>,
    pub init: bool,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    /// None: Docker's default profile; "unconfined"; or a profile file's contents (JSON).
    pub seccomp: Option<String>,
    /// "bridge" (the default network), "none" (own network namespace with loopback only),
    /// "host", or a user network's name.
    pub network: String,
    /// `--ip`: the address to lease on the user network.
    #[serde(default)]
    pub ip: Option<String>,
    /// `--network-alias`: more names the other members resolve to this container.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// An external runc-compatible runtime to drive instead of the built-in one.
    pub runtime: Option<PathBuf>,
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    #[serde(default)]
    pub log_max_size: Option<u64>,
    /// `-p`/`-P`: host ports to publish (`-P`'s already expanded from the exposed ports).
    #[serde(default)]
    pub ports: Vec<network::ports::PortSpec>,
    /// `-P` was given.
    #[serde(default)]
    pub publish_all: bool,
    /// `--add-host`: (name, address) lines for /etc/hosts.
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    /// `--dns`, `--dns-search`, `--dns-option`: resolv.conf in place of the host's.
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// Networks joined with `network connect`, after the primary one (`network`).
    #[serde(default)]
    pub extra_networks: Vec<Endpoint>,
}

/// A container's place on a network: `network connect --ip --alias`, or the primary network's
/// `--ip` and `--network-alias`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl ContainerConfig {
    /// The networks of ours the container is on, the primary one first (it is `eth0` and has
    /// the default route).
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let mut out = Vec::new();
        if crate::netconnect::is_user_network(&self.network) {
            out.push(Endpoint {
                name: self.network.clone(),
                ip: self.ip.clone(),
                aliases: self.network_aliases.clone(),
            });
        }
        out.extend(self.extra_networks.iter().cloned());
        out
    }

    /// The process's argv: entrypoint followed by the command.
    pub fn argv(&self) -> Vec<String> {
        self.entrypoint.iter().chain(self.cmd.iter()).cloned().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountSpec {
    pub kind: MountKind,
    /// Host path (bind), volume name (volume) or empty (tmpfs).
    pub source: String,
    pub target: String,
    pub readonly: bool,
    /// A volume made for this container only (`-v /path` or an image VOLUME): `rm -v` deletes it.
    #[serde(default)]
    pub anonymous: bool,
    /// Extra mount options (tmpfs size/mode, bind propagation).
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resources {
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "crate::blkio::BlockIo::is_empty")]
    pub block_io: crate::blkio::BlockIo,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartPolicy {
    /// "no", "on-failure", "always", "unless-stopped".
    pub name: String,
    pub max_retries: u32,
}

impl RestartPolicy {
    pub fn parse(s: &str) -> Result<RestartPolicy, String> {
        let (name, n) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let max_retries = match n {
            None => 0,
            Some(c) if name == "on-failure" => c
                .parse()
                .map_err(|_| format!("invalid restart policy {s:?}: the retry count must be a number"))?,
            Some(_) => {
                return Err(format!(
                    "invalid restart policy {s:?}: only on-failure takes a retry count"
                ))
            }
        };
        match name {
            "" | "no" | "on-failure" | "always" | "unless-stopped" => Ok(RestartPolicy {
                name: if name.is_empty() { "no".into() } else { name.into() },
                max_retries,
            }),
            _ => Err(format!(
                "invalid restart policy {s:?}: use no, on-failure[:N], always or unless-stopped"
            )),
        }
    }

    /// Should a container that exited with `code` be started again? `manual` is true when the
    /// user stopped it; `restarts` counts the restarts so far.
    pub fn should_restart(&self, code: i32, manual: bool, restarts: u32) -> bool {
        if manual {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max_retries == 0 || restarts < self.max_retries),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HealthConfig {
    /// Docker's form: ["CMD", args…], ["CMD-SHELL", "cmd"] or ["NONE"].
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub start_period_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!(RestartPolicy::parse("no").map(|p| p.name), Ok("no".into()));
        let p = RestartPolicy::parse("on-failure:3").expect("parse");
        assert_eq!(p.max_retries, 3);
        assert!(p.should_restart(1, false, 2));
        assert!(!p.should_restart(1, false, 3));
        assert!(!p.should_restart(0, false, 0));
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("always:2").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
        let a = RestartPolicy::parse("always").expect("parse");
        assert!(a.should_restart(0, false, 100));
        assert!(!a.should_restart(0, true, 0));
    }
}
