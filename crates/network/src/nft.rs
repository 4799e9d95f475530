//! NAT and isolation in an nftables table of LockBox's own (never anyone else's rules): rebuilt
//! whole from the list of networks in one `nft -f` transaction, and deleted with the last
//! network. Per network bridge B with subnet S and gateway G:
//! - outgoing traffic is masqueraded (`ip saddr S oifname != B masquerade`), unless internal;
//! - traffic between two LockBox bridges is dropped (networks are isolated from each other);
//! - an internal network's traffic never leaves its bridge, and reaches the host only at G.
//!
//! Published ports are DNAT rules for packets to the host's own addresses, arriving
//! (prerouting) or sent from the host itself (output), on every address or the one given. Their
//! loopback traffic reaches the container because the bridges have `route_localnet` set
//! (network::link): connections from 127.0.0.1 are masqueraded to the gateway on their way
//! out, and any other packet for 127.0.0.0/8 arriving on a bridge is dropped, so containers
//! cannot reach the host's loopback-only services (CVE-2020-8558).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ipam::Network;
use crate::ports::Binding;

/// The ruleset text for `networks` and `ports` in table `table` (starting with the table's
/// removal, so that applying it replaces whatever was there). Chain priorities are numbers:
/// Debian 12's nft knows no `dstnat` in an output chain.
pub fn ruleset(table: &str, networks: &[Network], ports: &[Binding]) -> String {
    let mut s = format!("add table ip {table}\ndelete table ip {table}\n");
    if networks.is_empty() {
        return s;
    }
    let bridges: Vec<String> = networks.iter().map(|n| format!("\"{}\"", n.bridge)).collect();
    let all = format!("{{ {} }}", bridges.join(", "));
    s.push_str(&format!("table ip {table} {{\n"));
    s.push_str("  chain forward {\n    type filter hook forward priority -1; policy accept;\n");
    for n in networks.iter().filter(|n| n.internal) {
        let b = &n.bridge;
        s.push_str(&format!("    iifname \"{b}\" oifname != \"{b}\" drop\n"));
        s.push_str(&format!("    oifname \"{b}\" iifname != \"{b}\" drop\n"));
    }
    // A published port is open to every network (as in Docker): DNATed traffic may cross.
    s.push_str("    ct status dnat accept\n");
    for n in networks {
        let b = &n.bridge;
        s.push_str(&format!("    iifname \"{b}\" oifname != \"{b}\" oifname {all} drop\n"));
    }
    s.push_str("  }\n");
    s.push_str("  chain input {\n    type filter hook input priority -1; policy accept;\n");
    s.push_str(&format!(
        "    iifname {all} ip daddr 127.0.0.0/8 ct status & dnat == 0 drop\n"
    ));
    for n in networks.iter().filter(|n| n.internal) {
        s.push_str(&format!(
            "    iifname \"{}\" ip daddr != {} drop\n",
            n.bridge, n.gateway
        ));
    }
    s.push_str("  }\n");
    s.push_str("  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n");
    for n in networks {
        let b = &n.bridge;
        // From the host's loopback, or from a container to a port of its own network
        // (hairpin): the reply must come back through the host to be un-NATed.
        s.push_str(&format!("    oifname \"{b}\" ip saddr 127.0.0.0/8 masquerade\n"));
        s.push_str(&format!(
            "    oifname \"{b}\" ip saddr {} ct status dnat masquerade\n",
            n.subnet
        ));
    }
    for n in networks.iter().filter(|n| !n.internal) {
        s.push_str(&format!(
            "    ip saddr {} oifname != \"{}\" masquerade\n",
            n.subnet, n.bridge
        ));
    }
    s.push_str("  }\n");
    s.push_str("  chain ports {\n");
    for p in ports {
        let daddr = if p.host_ip.is_unspecified() {
            String::new()
        } else {
            format!("ip daddr {} ", p.host_ip)
        };
        s.push_str(&format!(
            "    {daddr}{} dport {} dnat to {}:{}\n",
            p.proto, p.host_port, p.target, p.container_port
        ));
    }
    s.push_str("  }\n");
    for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
        s.push_str(&format!(
            "  chain {chain} {{\n    type nat hook {hook} priority -100; policy accept;\n    fib daddr type local jump ports\n  }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

/// Apply a ruleset with `nft -f -` (one atomic transaction).
pub fn apply(rules: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io {
            what: "run nft (install the nftables package)".into(),
            source: e,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(rules.as_bytes()).map_err(|e| Error::Io {
            what: "write rules to nft".into(),
            source: e,
        })?;
    }
    let out = child.wait_with_output().map_err(|e| Error::Io {
        what: "wait for nft".into(),
        source: e,
    })?;
    if !out.status.success() {
        return Err(Error::Netlink {
            what: "apply nftables rules".into(),
            msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(name: &str, subnet: &str, internal: bool) -> Network {
        let s: ipnet::Ipv4Net = subnet.parse().expect("subnet");
        Network {
            id: name.into(),
            name: name.into(),
            driver: "bridge".into(),
            subnet: s,
            gateway: s.hosts().next().expect("gw"),
            bridge: format!("lbr-{name}"),
            internal,
            created: 0,
            labels: Default::default(),
        }
    }

    #[test]
    fn rules_isolate_networks_and_masquerade_all_but_internal_ones() {
        let ports = [Binding {
            proto: crate::ports::Proto::Udp,
            host_ip: "127.0.0.1".parse().expect("ip"),
            host_port: 5353,
            container_port: 53,
            target: "10.1.0.2".parse().expect("ip"),
            bridge: "lbr-a".into(),
        }];
        let r = ruleset(
            "lbox-t",
            &[net("a", "10.1.0.0/24", false), net("b", "10.2.0.0/24", true)],
            &ports,
        );
        assert!(
            r.contains("ip daddr 127.0.0.1 udp dport 5353 dnat to 10.1.0.2:53"),
            "{r}"
        );
        assert!(r.starts_with("add table ip lbox-t\ndelete table ip lbox-t\n"));
        assert!(r.contains("ip saddr 10.1.0.0/24 oifname != \"lbr-a\" masquerade"));
        assert!(
            !r.contains("ip saddr 10.2.0.0/24 oifname"),
            "no masquerade for the internal network"
        );
        assert!(r.contains("iifname \"lbr-a\" oifname != \"lbr-a\" oifname { \"lbr-a\", \"lbr-b\" } drop"));
        assert!(r.contains("iifname \"lbr-b\" ip daddr != 10.2.0.1 drop"));
        assert_eq!(ruleset("x", &[], &[]), "add table ip x\ndelete table ip x\n");
    }
}
