//! User networks: the record (network::ipam) and the bridge (network::link) together, so that a
//! network exists with its bridge or not at all.

use network::ipam::{self, Network, NewNetwork};
use network::link::Netlink;

use crate::error::{Error, Result};
use crate::{db, Engine};

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

pub fn create(e: &Engine, req: &CreateRequest) -> Result<Network> {
    let tx = rusqlite::Transaction::new_unchecked(e.db(), rusqlite::TransactionBehavior::Immediate)?;
    let net = ipam::create(
        &tx,
        &NewNetwork {
            id: crate::names::new_id()?,
            name: req.name.clone(),
            subnet: req.subnet.clone(),
            gateway: req.gateway.clone(),
            internal: req.internal,
            labels: req.labels.clone(),
            bridge: String::new(),
            created: crate::time::now_ns(),
        },
        &host_routes(),
    )?;
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
        let _ = remove(e, &net.id);
        return Err(err);
    }
    Ok(net)
}

/// Rebuild the engine's nftables table from its networks (under a lock: the ruleset is whole).
pub fn sync_rules(e: &Engine) -> Result<()> {
    let _lock = crate::owner::acquire(&e.paths.network_lock("nftables"))?;
    let nets = list(e)?;
    network::nft::apply(&network::nft::ruleset(&e.paths.nft_table(), &nets))?;
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
    let tx = rusqlite::Transaction::new_unchecked(e.db(), rusqlite::TransactionBehavior::Immediate)?;
    ipam::remove(&tx, &net, |id| container_name(e, id))?;
    Netlink::open()?.delete(&net.bridge)?;
    tx.commit()?;
    Ok(net)
}

/// Remove every network no container uses; their names. The rules are rebuilt once.
pub fn prune(e: &Engine) -> Result<Vec<String>> {
    let mut gone = Vec::new();
    let mut failed = None;
    for net in list(e)? {
        match forget(e, &net.id) {
            Ok(n) => gone.push(n.name),
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
