//! `inspect` of containers (Docker's JSON shape), falling back to images for other names.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use engine::config::MountKind;
use engine::{Container, Engine, State};
use serde_json::{json, Value};

use super::containers::open;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output with a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only this kind of object: container or image.
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Docker's NetworkSettings: the address on each network while the container runs.
fn network_settings(e: &Engine, c: &Container) -> Value {
    let addrs = engine::netconnect::addresses(e, &c.id).unwrap_or_default();
    let mut networks = serde_json::Map::new();
    let entry = |net: Option<&network::ipam::Network>, ip: String| {
        json!({
            "NetworkID": net.map_or("", |n| n.id.as_str()),
            "IPAddress": ip,
            "IPPrefixLen": net.map_or(0, |n| n.subnet.prefix_len()),
            "Gateway": net.filter(|n| !n.internal).map_or(String::new(), |n| n.gateway.to_string()),
            "Aliases": net.map(|n| engine::nethosts::aliases_on(c, &n.name)).unwrap_or_default(),
        })
    };
    match addrs.first() {
        Some(_) => {
            for (net, ip) in &addrs {
                networks.insert(net.name.clone(), entry(Some(net), ip.to_string()));
            }
        }
        None => {
            networks.insert(c.config.network.clone(), entry(None, String::new()));
        }
    }
    let first = addrs.first();
    // Docker's Ports: every exposed port, with its host bindings (null when unpublished).
    let bound = engine::netconnect::bindings(e, &c.id).unwrap_or_default();
    let mut ports = serde_json::Map::new();
    for p in &c.config.exposed_ports {
        let hosts: Vec<Value> = bound
            .iter()
            .filter(|b| b.port_key() == *p)
            .map(|b| json!({"HostIp": b.host_ip.to_string(), "HostPort": b.host_port.to_string()}))
            .collect();
        ports.insert(p.clone(), if hosts.is_empty() { Value::Null } else { json!(hosts) });
    }
    json!({
        "Ports": ports,
        "Networks": networks,
        "IPAddress": first.map_or(String::new(), |(_, ip)| ip.to_string()),
        "Gateway": first.filter(|(n, _)| !n.internal).map_or(String::new(), |(n, _)| n.gateway.to_string()),
    })
}

/// Docker's HostConfig.PortBindings: what -p asked for ("" for any address or port).
fn port_bindings(specs: &[network::ports::PortSpec]) -> Value {
    let mut out = serde_json::Map::new();
    for s in specs {
        let key = s.port_key();
        let entry = json!({
            "HostIp": s.host_ip.map_or(String::new(), |ip| ip.to_string()),
            "HostPort": if s.host_port == 0 { String::new() } else { s.host_port.to_string() },
        });
        match out.get_mut(&key).and_then(Value::as_array_mut) {
            Some(list) => list.push(entry),
            None => {
                out.insert(key, json!([entry]));
            }
        }
    }
    Value::Object(out)
}

pub fn container_json(e: &Engine, c: &Container) -> Value {
    let dir = e.paths.container(&c.id);
    let argv = c.config.argv();
    let health: Value = serde_json::from_str(&c.health_log).unwrap_or(json!({}));
    let mounts: Vec<Value> = c
        .config
        .mounts
        .iter()
        .map(|m| {
            let (typ, source, name) = match m.kind {
                MountKind::Bind => ("bind", m.source.clone(), Value::Null),
                MountKind::Volume => (
                    "volume",
                    e.paths.volume(&m.source).display().to_string(),
                    json!(m.source),
                ),
                MountKind::Tmpfs => ("tmpfs", String::new(), Value::Null),
            };
            json!({"Type": typ, "Name": name, "Source": source, "Destination": m.target, "RW": !m.readonly})
        })
        .collect();
    let mut state = json!({
        "Status": c.state.as_str(),
        "Running": matches!(c.state, State::Running | State::Paused),
        "Paused": c.state == State::Paused,
        "Restarting": c.state == State::Restarting,
        "OOMKilled": false,
        "Dead": c.state == State::Dead,
        "Pid": c.pid,
        "MonitorPid": c.monitor_pid,
        "ExitCode": c.exit_code,
        "Error": c.error,
        "StartedAt": engine::time::rfc3339(c.started),
        "FinishedAt": engine::time::rfc3339(c.finished),
    });
    if !c.health.is_empty() {
        state["Health"] = json!({
            "Status": c.health,
            "FailingStreak": health.get("FailingStreak").cloned().unwrap_or(json!(0)),
            "Log": health.get("Log").cloned().unwrap_or(json!([])),
        });
    }
    let cfg = &c.config;
    json!({
        "Id": c.id,
        "Created": engine::time::rfc3339(c.created),
        "Path": argv.first().cloned().unwrap_or_default(),
        "Args": argv.iter().skip(1).collect::<Vec<_>>(),
        "State": state,
        "Image": format!("sha256:{}", cfg.image_id.trim_start_matches("sha256:")),
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": e.paths.log(&c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": c.restarts,
        "Driver": "overlay",
        "Mounts": mounts,
        "Config": {
            "Hostname": cfg.hostname,
            "User": cfg.user,
            "Tty": cfg.tty,
            "OpenStdin": cfg.open_stdin,
            "Env": cfg.env,
            "Cmd": cfg.cmd,
            "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
            "Image": cfg.image,
            "WorkingDir": cfg.workdir,
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout,
            "ExposedPorts": cfg.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "Healthcheck": cfg.health.as_ref().map(|h| json!({
                "Test": h.test,
                "Interval": h.interval_ms * 1_000_000,
                "Timeout": h.timeout_ms * 1_000_000,
                "Retries": h.retries,
                "StartPeriod": h.start_period_ms * 1_000_000,
            })),
        },
        "HostConfig": {
            "Memory": cfg.resources.memory.unwrap_or(0),
            "NanoCpus": cfg.resources.nano_cpus.unwrap_or(0),
            "PidsLimit": cfg.resources.pids_limit,
            "BlkioWeight": cfg.resources.block_io.weight.unwrap_or(0),
            "BlkioDeviceReadBps": engine::blkio::inspect(&cfg.resources.block_io.read_bps),
            "BlkioDeviceWriteBps": engine::blkio::inspect(&cfg.resources.block_io.write_bps),
            "BlkioDeviceReadIOps": engine::blkio::inspect(&cfg.resources.block_io.read_iops),
            "BlkioDeviceWriteIOps": engine::blkio::inspect(&cfg.resources.block_io.write_iops),
            "Privileged": cfg.privileged,
            "ReadonlyRootfs": cfg.read_only,
            "RestartPolicy": {"Name": cfg.restart.name, "MaximumRetryCount": cfg.restart.max_retries},
            "AutoRemove": cfg.auto_remove,
            "CapAdd": cfg.cap_add,
            "CapDrop": cfg.cap_drop,
            "SecurityOpt": if cfg.no_new_privileges { json!(["no-new-privileges"]) } else { Value::Null },
            "NetworkMode": cfg.network,
            "PortBindings": port_bindings(&cfg.ports),
            "PublishAllPorts": cfg.publish_all,
            "ExtraHosts": cfg.extra_hosts.iter().map(|(n, ip)| format!("{n}:{ip}")).collect::<Vec<_>>(),
            "Dns": cfg.dns,
            "DnsSearch": cfg.dns_search,
            "DnsOptions": cfg.dns_options,
            "Runtime": cfg.runtime.as_ref().map_or("lbox".to_string(), |r| r.display().to_string()),
            "Init": cfg.init,
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("rootfs"),
            },
        },
        "NetworkSettings": network_settings(e, c),
    })
}

pub fn inspect(root: &Path, a: InspectArgs) -> Result<i32> {
    let e = open(root)?;
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let found = match a.kind.as_deref() {
            Some("image") => None,
            _ => match e.find(n) {
                Ok(c) => Some(container_json(&e, &c)),
                Err(engine::Error::NoSuchContainer(_)) => None,
                Err(err) => return Err(err.into()),
            },
        };
        let found = match found {
            Some(v) => Some(v),
            None if a.kind.as_deref() != Some("container") => super::images::inspect_value(root, n).ok(),
            None => None,
        };
        match found {
            Some(v) => out.push(v),
            None => {
                eprintln!("lbox: no such object: {n}");
                code = 1;
            }
        }
    }
    super::template::print_inspect(a.format.as_deref(), &out)?;
    Ok(code)
}
