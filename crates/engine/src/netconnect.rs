//! A container on its networks: an address leased on each (network::ipam), a veth pair per
//! network set up in its network namespace before its program starts (network::link; the
//! primary network is `eth0` with the default route, the others `eth1`…), its published ports
//! on the primary network, and its name in its neighbours' /etc/hosts (nethosts). `network
//! connect` and `disconnect` do the same for one network while it runs.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use network::ipam::{self, Network};
use network::link::{self, Attachment, Netlink};
use network::ports::{self, Binding};

use crate::config::Endpoint;
use crate::db::{self, Container};
use crate::error::{Context, Error, Result};
use crate::{nethosts, networks, Engine};

/// Is this a network of ours (not "none", "host" or another container's)?
pub fn is_user_network(name: &str) -> bool {
    name != "none" && name != "host" && !name.starts_with("container:")
}

/// The host end of the container's veth pair on a network (device names have 15 bytes).
pub fn host_if(container_id: &str, network_id: &str) -> String {
    format!(
        "lv{}{}",
        &container_id[..7.min(container_id.len())],
        &network_id[..6.min(network_id.len())]
    )
}

/// `--ip` on `net`: an IPv4 address inside its subnet.
pub fn requested_ip(net: &Network, ip: Option<&str>) -> Result<Option<Ipv4Addr>> {
    let Some(ip) = ip else { return Ok(None) };
    let addr: Ipv4Addr = ip.parse().map_err(|_| Error::Invalid(format!("invalid --ip {ip:?}")))?;
    if !net.subnet.contains(&addr) {
        return Err(Error::Invalid(format!(
            "--ip {addr} is not in network {}'s subnet {}",
            net.name, net.subnet
        )));
    }
    Ok(Some(addr))
}

/// Lease an address on `net` (a lease left by a start that died half-way is replaced).
fn lease(e: &Engine, net: &Network, ct: &Container, ip: Option<&str>) -> Result<Ipv4Addr> {
    let requested = requested_ip(net, ip)?;
    let tx = rusqlite::Transaction::new_unchecked(e.db(), rusqlite::TransactionBehavior::Immediate)?;
    ipam::release_on(&tx, &ct.id, &net.id)?;
    let addr = ipam::allocate(&tx, net, &ct.id, requested)?;
    tx.commit()?;
    Ok(addr)
}

/// Lease an address on `net` and link the namespace to its bridge as `ifname` (`eth0` is the
/// primary network's, with the default route).
fn join(
    e: &Engine,
    nl: &Netlink,
    netns: BorrowedFd,
    ct: &Container,
    net: &Network,
    ep: &Endpoint,
    ifname: &str,
) -> Result<Ipv4Addr> {
    let primary = ifname == "eth0";
    let addr = lease(e, net, ct, ep.ip.as_deref())?;
    let prefix = net.subnet.prefix_len();
    let linked = nl
        // Gone after a reboot, or removed by hand: the network's record is what counts.
        .ensure_bridge(&net.bridge, net.gateway, prefix)
        .and_then(|()| {
            link::connect(
                nl,
                netns,
                &Attachment {
                    bridge: &net.bridge,
                    host_if: &host_if(&ct.id, &net.id),
                    ifname,
                    addr,
                    prefix,
                    // The default route is the primary network's; an internal one has none.
                    gateway: (primary && !net.internal).then_some(net.gateway),
                },
            )
        });
    if let Err(err) = linked {
        let _ = ipam::release_on(e.db(), &ct.id, &net.id);
        return Err(err.into());
    }
    Ok(addr)
}

fn open_netns(pid: i32) -> Result<File> {
    open_netns_at(Path::new(&format!("/proc/{pid}/ns/net")))
}

fn open_netns_at(path: &Path) -> Result<File> {
    File::open(path).ctx(|| format!("open {}", path.display()))
}

/// Put the container (created, not yet started) whose network namespace is `netns` on its
/// networks and publish its ports. Returns the sockets that hold its host ports: keep them while
/// it runs.
pub fn attach(e: &Engine, ct: &Container, netns: &Path) -> Result<Vec<OwnedFd>> {
    let endpoints = ct.config.endpoints();
    if endpoints.is_empty() {
        return Ok(Vec::new());
    }
    // First: a host port in use is an error before anything else is made.
    let reserved = ports::reserve(&ct.config.ports)?;
    let done = (|| -> Result<()> {
        let netns = open_netns_at(netns)?;
        let nl = Netlink::open()?;
        let mut nets = Vec::new();
        let mut primary_addr = None;
        for (k, ep) in endpoints.iter().enumerate() {
            let net = networks::find(e, &ep.name)?;
            let addr = join(e, &nl, netns.as_fd(), ct, &net, ep, &format!("eth{k}"))?;
            if k == 0 {
                primary_addr = Some((net.clone(), addr));
            }
            nets.push(net);
        }
        nethosts::rewrite(e, &nets, &ct.id)?;
        match primary_addr {
            Some((net, addr)) => publish(e, ct, &net, addr, &reserved),
            None => Ok(()),
        }
    })();
    if done.is_err() {
        let _ = ipam::release(e.db(), &ct.id);
        if !ct.config.ports.is_empty() && ports::release(e.db(), &ct.id).unwrap_or(false) {
            let _ = networks::sync_rules(e);
        }
    }
    done.map(|()| reserved.sockets)
}

/// Record the container's published ports and put their DNAT rules in place.
fn publish(e: &Engine, ct: &Container, net: &Network, addr: Ipv4Addr, reserved: &ports::Reserved) -> Result<()> {
    if ct.config.ports.is_empty() {
        return Ok(());
    }
    // A previous run's rows, left by a monitor that died.
    ports::release(e.db(), &ct.id)?;
    let bindings: Vec<Binding> = reserved
        .specs
        .iter()
        .map(|(spec, host_port)| Binding {
            proto: spec.proto,
            host_ip: spec.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            host_port: *host_port,
            container_port: spec.container_port,
            target: addr,
            bridge: net.bridge.clone(),
        })
        .collect();
    ports::record(e.db(), &ct.id, &bindings)?;
    networks::sync_rules(e)
}

/// The container's published ports (while it runs).
pub fn bindings(e: &Engine, id: &str) -> Result<Vec<Binding>> {
    Ok(ports::of(e.db(), id)?)
}

/// Take the container off its networks (its init has exited): its ports, its addresses, and its
/// name in the other members' hosts files.
pub fn detach(e: &Engine, ct: &Container) -> Result<()> {
    // Rows exist only for containers with ports (disconnect deletes them with the ports).
    if !ct.config.ports.is_empty() && ports::release(e.db(), &ct.id)? {
        networks::sync_rules(e)?;
    }
    // Without a bridge network (none, host, container:OTHER) a container never gets a lease:
    // `network connect` refuses it. No query then, on every such container's exit.
    if ct.config.endpoints().is_empty() {
        return Ok(());
    }
    let leases = ipam::leases_of(e.db(), &ct.id)?;
    if leases.is_empty() {
        return Ok(());
    }
    ipam::release(e.db(), &ct.id)?;
    // The veth pairs are not deleted here: the kernel deletes them with the container's network
    // namespace, while deleting them ourselves waits for RCU grace periods (~25 ms). A pair still
    // there at the next start is deleted then (network::link::connect).
    let mut nets = Vec::new();
    for (net_id, _) in leases {
        if let Some(net) = ipam::get(e.db(), &net_id)? {
            nets.push(net);
        }
    }
    nethosts::rewrite(e, &nets, &ct.id)
}

/// The container's addresses: (network, address).
pub fn addresses(e: &Engine, id: &str) -> Result<Vec<(Network, Ipv4Addr)>> {
    let mut out = Vec::new();
    for (net_id, addr) in ipam::leases_of(e.db(), id)? {
        if let Some(net) = ipam::get(e.db(), &net_id)? {
            out.push((net, addr));
        }
    }
    Ok(out)
}

/// `network connect`: put the container on one more network, at once if it runs, else from its
/// next start.
pub fn connect(e: &Engine, ct: &Container, network: &str, ip: Option<String>, aliases: Vec<String>) -> Result<()> {
    let c = &ct.config;
    if !is_user_network(&c.network) {
        return Err(Error::Invalid(format!(
            "container {} uses the network {:?}; it cannot be connected to other networks",
            ct.name, c.network
        )));
    }
    let net = networks::find(e, network)?;
    if c.endpoints().iter().any(|ep| ep.name == net.name) {
        return Err(Error::Invalid(format!(
            "container {} is already connected to network {}",
            ct.name, net.name
        )));
    }
    if net.name == network::ipam::DEFAULT_NETWORK && (ip.is_some() || !aliases.is_empty()) {
        return Err(Error::Invalid("--ip and --alias need a user-defined network".into()));
    }
    requested_ip(&net, ip.as_deref())?;
    let ep = Endpoint {
        name: net.name.clone(),
        ip,
        aliases,
    };
    let mut config = c.clone();
    config.extra_networks.push(ep.clone());
    db::set_config(e.db(), &ct.id, &config)?;
    let Some(pid) = ct.running_pid() else { return Ok(()) };
    let live = (|| -> Result<()> {
        let netns = open_netns(pid)?;
        let nl = Netlink::open()?;
        let ifname = link::in_netns(netns.as_fd(), |n| {
            // The first free ethN inside (earlier connects and disconnects leave gaps).
            (1..)
                .map(|k| format!("eth{k}"))
                .find_map(|name| match n.index(&name) {
                    Ok(None) => Some(Ok(name)),
                    Ok(Some(_)) => None,
                    Err(e) => Some(Err(e)),
                })
                .unwrap_or_else(|| Ok("eth99".into()))
        })?;
        let mut updated = ct.clone();
        updated.config = config.clone();
        join(e, &nl, netns.as_fd(), &updated, &net, &ep, &ifname)?;
        nethosts::rewrite(e, std::slice::from_ref(&net), &ct.id)
    })();
    if live.is_err() {
        let _ = db::set_config(e.db(), &ct.id, c);
    }
    live
}

/// `network disconnect`: take the container off a network (its veth pair deleted at once if it
/// runs). The primary network's place goes to the next network, or to none.
pub fn disconnect(e: &Engine, ct: &Container, network: &str) -> Result<()> {
    let net = networks::find(e, network)?;
    let mut config = ct.config.clone();
    let on_it = config.endpoints().iter().any(|ep| ep.name == net.name);
    if !on_it {
        return Err(Error::Invalid(format!(
            "container {} is not connected to network {}",
            ct.name, net.name
        )));
    }
    if config.network == net.name {
        match config.extra_networks.first().cloned() {
            Some(next) => {
                config.extra_networks.remove(0);
                config.network = next.name;
                config.ip = next.ip;
                config.network_aliases = next.aliases;
            }
            None => {
                config.network = "none".into();
                config.ip = None;
                config.network_aliases.clear();
                config.ports.clear();
            }
        }
    } else {
        config.extra_networks.retain(|ep| ep.name != net.name);
    }
    db::set_config(e.db(), &ct.id, &config)?;
    if ct.running_pid().is_some() {
        Netlink::open()?.delete(&host_if(&ct.id, &net.id))?;
        ipam::release_on(e.db(), &ct.id, &net.id)?;
        if ports::of(e.db(), &ct.id)?.iter().any(|b| b.bridge == net.bridge) {
            ports::release(e.db(), &ct.id)?;
            networks::sync_rules(e)?;
        }
        nethosts::rewrite(e, std::slice::from_ref(&net), &ct.id)?;
    }
    Ok(())
}
