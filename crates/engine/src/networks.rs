//! User networks: the record (network::ipam) and the bridge (network::link) together, so that a
//! network exists with its bridge or not at all.

use network::ipam::{self, Network, NewNetwork, DEFAULT_NETWORK};
use network::link::Netlink;

use crate::error::{Context, Error, Result};
use crate::{db, Engine};

/// Subnets are chosen against the host's routes, which every engine root on the host shares:
/// one host-wide lock keeps two roots from picking the same free subnet at once.
const SUBNET_LOCK: &str = "/run/lbox-subnets.lock";

/// The default network's subnet when it is free (Docker's 172.17/16 and podman's 10.88/16 are
/// left to them); else the first free /24 of the user networks' pool.
const DEFAULT_SUBNET: &str = "10.87.0.0/16";

/// Names `network create` cannot take: Docker's pre-defined networks.
const PREDEFINED: [&str; 3] = [DEFAULT_NETWORK, "host", "none"];

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: std::collections::BTreeMap<String, String>,
}

fn host_routes() -> Vec<ipnet::Ipv4Net> {
    std::fs::read_to_string("/proc/net/route")
        .map(|t| network::subnet::host_routes(&t))
        .unwrap_or_default()
}

/// `network create`: a user network.
pub fn create(e: &Engine, req: &CreateRequest) -> Result<Network> {
    if PREDEFINED.contains(&req.name.as_str()) {
        return Err(Error::Invalid(format!(
            "network name {:?} is reserved for a pre-defined network; choose another name",
            req.name
        )));
    }
    make(e, req, String::new(), None)
}

/// The default network (`bridge`, on the bridge device `lbox0`), made on first use.
pub fn ensure_default(e: &Engine) -> Result<Network> {
    if let Ok(n) = find(e, DEFAULT_NETWORK) {
        return Ok(n);
    }
    let req = CreateRequest {
        name: DEFAULT_NETWORK.into(),
        ..Default::default()
    };
    match make(e, &req, e.paths.default_bridge(), Some(DEFAULT_SUBNET)) {
        Ok(n) => Ok(n),
        // Made meanwhile by a concurrent lbox.
        Err(Error::Network(network::Error::NameInUse(_))) => find(e, DEFAULT_NETWORK),
        Err(err) => Err(err),
    }
}

/// Containers reach the outside through the host's routing (Docker turns it on too).
fn enable_forwarding() -> Result<()> {
    const KNOB: &str = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(KNOB).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(KNOB, "1").ctx(|| format!("turn on IPv4 forwarding ({KNOB})"))
}

/// Record a network and make its bridge; `prefer` is a subnet to take when it is free.
fn make(e: &Engine, req: &CreateRequest, bridge: String, prefer: Option<&str>) -> Result<Network> {
    let _subnets = crate::owner::acquire(std::path::Path::new(SUBNET_LOCK))?;
    let tx = rusqlite::Transaction::new_unchecked(e.db(), rusqlite::TransactionBehavior::Immediate)?;
    let routes = host_routes();
    let mut new = NewNetwork {
        id: crate::names::new_id()?,
        name: req.name.clone(),
        subnet: req.subnet.clone(),
        gateway: req.gateway.clone(),
        internal: req.internal,
        labels: req.labels.clone(),
        bridge,
        created: crate::time::now_ns(),
    };
    let net = match prefer.filter(|_| req.subnet.is_none()) {
        Some(p) => {
            new.subnet = Some(p.to_string());
            match ipam::create(&tx, &new, &routes) {
                Err(network::Error::Overlap { .. }) | Err(network::Error::Invalid(_)) => {
                    new.subnet = None;
                    ipam::create(&tx, &new, &routes)?
                }
                other => other?,
            }
        }
        None => ipam::create(&tx, &new, &routes)?,
    };
    if !net.internal {
        enable_forwarding()?;
    }
    // The bridge before the commit: a failure leaves neither.
    let nl = Netlink::open()?;
    if let Err(err) = nl.ensure_bridge(&net.bridge, net.gateway, net.subnet.prefix_len()) {
        let _ = nl.delete(&net.bridge);
        return Err(err.into());
    }
    if let Err(err) = tx.commit() {
        let _ = nl.delete(&net.bridge);
        return Err(err.into());
    }
    if let Err(err) = sync_rules(e) {
        // No network without its rules: an unisolated one would be worse than none.
        if forget_net(e, &net).is_ok() {
            let _ = sync_rules(e);
        }
        return Err(err);
    }
    Ok(net)
}

/// Rebuild the engine's nftables table from its networks (under a lock: the ruleset is whole).
pub fn sync_rules(e: &Engine) -> Result<()> {
    let _lock = crate::owner::acquire(&e.paths.network_lock("nftables"))?;
    let nets = list(e)?;
    let ports = network::ports::all(e.db())?;
    // DNAT from 127.0.0.1 needs the bridge to carry loopback-sourced traffic.
    let mut bridges: Vec<&str> = ports.iter().map(|p| p.bridge.as_str()).collect();
    bridges.sort_unstable();
    bridges.dedup();
    for b in bridges {
        network::link::route_localnet(b)?;
    }
    network::nft::apply(&network::nft::ruleset(&e.paths.nft_table(), &nets, &ports))?;
    Ok(())
}

pub fn list(e: &Engine) -> Result<Vec<Network>> {
    Ok(ipam::list(e.db())?)
}

pub fn find(e: &Engine, key: &str) -> Result<Network> {
    Ok(ipam::find(e.db(), key)?)
}

/// The names of the containers on a network.
pub fn users(e: &Engine, net: &Network) -> Result<Vec<String>> {
    Ok(ipam::users(e.db(), &net.id)?
        .iter()
        .map(|id| container_name(e, id))
        .collect())
}

fn container_name(e: &Engine, id: &str) -> String {
    db::get(e.db(), id)
        .ok()
        .flatten()
        .map_or_else(|| id[..12.min(id.len())].to_string(), |c| c.name)
}

/// Remove a network no container uses: its bridge, its record, and its rules.
pub fn remove(e: &Engine, key: &str) -> Result<Network> {
    let net = forget(e, key)?;
    sync_rules(e)?;
    Ok(net)
}

/// Remove a network's bridge and record (its rules stay until the next `sync_rules`).
fn forget(e: &Engine, key: &str) -> Result<Network> {
    let net = find(e, key)?;
    if net.name == DEFAULT_NETWORK {
        return Err(Error::Invalid(format!(
            "{DEFAULT_NETWORK} is a pre-defined network and cannot be removed"
        )));
    }
    forget_net(e, &net)?;
    Ok(net)
}

fn forget_net(e: &Engine, net: &Network) -> Result<()> {
    let tx = rusqlite::Transaction::new_unchecked(e.db(), rusqlite::TransactionBehavior::Immediate)?;
    ipam::remove(&tx, net, |id| container_name(e, id))?;
    Netlink::open()?.delete(&net.bridge)?;
    tx.commit()?;
    Ok(())
}

/// `system reset`: every network, the default one included, and the rules (no container may
/// be left on them).
pub fn remove_all(e: &Engine) -> Result<()> {
    for net in list(e)? {
        forget_net(e, &net)?;
    }
    sync_rules(e)
}

/// Remove every network no container uses; their names. The rules are rebuilt once.
pub fn prune(e: &Engine) -> Result<Vec<String>> {
    let mut gone = Vec::new();
    let mut failed = None;
    for net in list(e)?.into_iter().filter(|n| n.name != DEFAULT_NETWORK) {
        match forget_net(e, &net) {
            Ok(()) => gone.push(net.name),
            Err(Error::Network(network::Error::InUse { .. })) => {}
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    sync_rules(e)?;
    failed.map_or(Ok(gone), Err)
}
