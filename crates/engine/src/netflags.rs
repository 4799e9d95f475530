//! The network flags of `create`/`run` checked and resolved: `--network`, `--ip`,
//! `--network-alias`, `-p`/`-P`/`--expose`, `--add-host` and `--dns*`.

use std::net::Ipv4Addr;

use network::ipam::DEFAULT_NETWORK;
use network::ports::{self, PortSpec, Proto};

use crate::config::ContainerConfig;
use crate::create::CreateRequest;
use crate::error::{Error, Result};

/// `--add-host`'s special address: the container's gateway, i.e. the host (as Docker's).
pub const HOST_GATEWAY: &str = "host-gateway";

/// Fill the network part of `config` from the request and the image's exposed ports.
pub fn apply(req: &CreateRequest, image_exposed: &[String], config: &mut ContainerConfig) -> Result<()> {
    let network = req.network.clone().unwrap_or_else(|| DEFAULT_NETWORK.into());
    if let Some(other) = network.strip_prefix("container:") {
        // Docker's rule: the network is OTHER's, so nothing about it can be set here.
        if other.is_empty() {
            return Err(Error::Invalid(
                "--network container: needs a container's name or ID".into(),
            ));
        }
        let conflicts = [
            ("-p/-P", !req.publish.is_empty() || req.publish_all),
            ("--ip", req.ip.is_some()),
            ("--network-alias", !req.network_aliases.is_empty()),
            ("--add-host", !req.add_hosts.is_empty()),
            (
                "--dns",
                !(req.dns.is_empty() && req.dns_search.is_empty() && req.dns_options.is_empty()),
            ),
            ("--hostname", req.hostname.is_some()),
        ];
        if let Some((flag, _)) = conflicts.iter().find(|(_, set)| *set) {
            return Err(Error::Invalid(format!(
                "conflicting options: {flag} cannot be used with --network {network} (the network is that container's)"
            )));
        }
    }
    let ours = crate::netconnect::is_user_network(&network);
    if ours {
        network::ipam::check_name(&network)?;
    }
    // Docker's rule: addresses and aliases are chosen on user-defined networks only.
    let user_defined = ours && network != DEFAULT_NETWORK;
    if let Some(ip) = &req.ip {
        if !user_defined {
            return Err(Error::Invalid(
                "--ip needs a user-defined network: create one with lbox network create --subnet CIDR NAME and run with --network NAME".into(),
            ));
        }
        if ip.parse::<Ipv4Addr>().is_err() {
            return Err(Error::Invalid(format!("invalid --ip {ip:?}: want an IPv4 address")));
        }
    }
    if !req.network_aliases.is_empty() && !user_defined {
        return Err(Error::Invalid(
            "--network-alias needs a user-defined network (--network NAME)".into(),
        ));
    }
    // Exposed: the image's, --expose's, and every published port (as Docker records them).
    let mut exposed: Vec<(u16, Proto)> = Vec::new();
    for e in image_exposed.iter().chain(&req.expose) {
        exposed.extend(ports::parse_exposed(e)?);
    }
    let mut published: Vec<PortSpec> = Vec::new();
    for p in &req.publish {
        published.extend(ports::parse(p)?);
    }
    if req.publish_all {
        for &(port, proto) in &exposed {
            if !published.iter().any(|p| p.container_port == port && p.proto == proto) {
                published.push(PortSpec {
                    host_ip: None,
                    host_port: 0,
                    container_port: port,
                    proto,
                });
            }
        }
    }
    exposed.extend(published.iter().map(|p| (p.container_port, p.proto)));
    exposed.sort();
    exposed.dedup();
    if !published.is_empty() && !ours && !network.starts_with("container:") {
        // Docker discards them with the host's network; with none there is nowhere to go.
        if network == "none" {
            return Err(Error::Invalid(
                "published ports need a network: --network none has none; drop -p/-P or use a bridge network".into(),
            ));
        }
        published.clear();
    }
    let mut extra_hosts = Vec::new();
    for h in &req.add_hosts {
        extra_hosts.push(add_host(h)?);
    }
    for d in &req.dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::Invalid(format!("invalid --dns {d:?}: want an IP address")));
        }
    }
    config.network = network;
    config.ip = req.ip.clone();
    config.network_aliases = req.network_aliases.clone();
    config.exposed_ports = exposed.iter().map(|(p, proto)| format!("{p}/{proto}")).collect();
    config.ports = published;
    config.publish_all = req.publish_all;
    config.extra_hosts = extra_hosts;
    config.dns = req.dns.clone();
    config.dns_search = req.dns_search.clone();
    config.dns_options = req.dns_options.clone();
    Ok(())
}

/// `--add-host NAME:IP` (or `NAME=IP`): (names, address).
fn add_host(h: &str) -> Result<(String, String)> {
    let bad = || {
        Error::Invalid(format!(
            "invalid --add-host {h:?}: use NAME:IP (IP may be {HOST_GATEWAY})"
        ))
    };
    let (name, ip) = h.split_once('=').or_else(|| h.split_once(':')).ok_or_else(bad)?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad());
    }
    if ip != HOST_GATEWAY && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad());
    }
    Ok((name.to_string(), ip.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host_takes_docker_forms() {
        assert_eq!(add_host("db:10.0.0.5").expect("ok"), ("db".into(), "10.0.0.5".into()));
        assert_eq!(add_host("db=10.0.0.5").expect("ok"), ("db".into(), "10.0.0.5".into()));
        assert_eq!(add_host("v6:[::1]").expect("ok"), ("v6".into(), "::1".into()));
        assert_eq!(add_host("h:host-gateway").expect("ok").1, "host-gateway");
        for bad in ["db", ":1.2.3.4", "db:nope", "a b:1.2.3.4"] {
            assert!(add_host(bad).is_err(), "{bad}");
        }
    }
}
