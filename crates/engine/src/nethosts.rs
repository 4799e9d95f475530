//! Names on networks: each container's /etc/hosts lists its own names, then every other member
//! of each user network it is on (name and aliases, at its address there), and `--add-host`
//! lines. Files are rewritten whole, in place (the file is bind-mounted into the container, and
//! a rename would leave the container the old one), under one engine-wide lock, from the state
//! database: whoever writes last writes the current state.

use std::io::Write;
use std::net::Ipv4Addr;

use network::ipam::{self, Network, DEFAULT_NETWORK};

use crate::db::{self, Container};
use crate::error::{Context, Result};
use crate::{owner, rootfs, Engine};

/// Rewrite the hosts files of everyone whose view changed when `me` came or went on `nets`: the
/// members of those user networks (the default network gives no names, as Docker's: there only
/// `me`'s own file changes).
pub fn rewrite(e: &Engine, nets: &[Network], me: &str) -> Result<()> {
    let named: Vec<&Network> = nets.iter().filter(|n| n.name != DEFAULT_NETWORK).collect();
    // Only `me`'s own file (the default network's case, at every start there): no one else
    // writes it meanwhile, so no lock.
    let _lock = match named.is_empty() {
        true => None,
        false => Some(owner::acquire(&e.paths.network_lock("hosts"))?),
    };
    let mut ids = vec![me.to_string()];
    for n in named {
        ids.extend(ipam::users(e.db(), &n.id)?);
    }
    ids.sort();
    ids.dedup();
    for id in ids {
        write_for(e, &id)?;
    }
    Ok(())
}

fn write_for(e: &Engine, id: &str) -> Result<()> {
    let Some(me) = db::get(e.db(), id)? else { return Ok(()) };
    let leases = ipam::leases_of(e.db(), id)?;
    let mut nets: Vec<(Network, Ipv4Addr)> = Vec::new();
    for (net_id, addr) in leases {
        if let Some(n) = ipam::get(e.db(), &net_id)? {
            nets.push((n, addr));
        }
    }
    // Own names at the primary network's address (the first endpoint), else the first lease.
    let primary = nets.iter().find(|(n, _)| n.name == me.config.network).or(nets.first());
    let Some((_, my_addr)) = primary else { return Ok(()) };
    let mut extra = Vec::new();
    let mut mine = vec![me.config.hostname.clone(), me.name.clone()];
    mine.extend(me.config.network_aliases.iter().cloned());
    mine.dedup();
    extra.push((mine.join(" "), my_addr.to_string()));
    for (net, _) in nets.iter().filter(|(n, _)| n.name != DEFAULT_NETWORK) {
        for other_id in ipam::users(e.db(), &net.id)?.iter().filter(|o| *o != id) {
            let (Some(other), Some((_, addr))) = (
                db::get(e.db(), other_id)?,
                ipam::leases_of(e.db(), other_id)?
                    .into_iter()
                    .find(|(n, _)| *n == net.id),
            ) else {
                continue;
            };
            let mut names = vec![other.name.clone()];
            names.extend(aliases_on(&other, &net.name));
            extra.push((names.join(" "), addr.to_string()));
        }
    }
    let gateway = nets.first().map(|(n, _)| n.gateway.to_string()).unwrap_or_default();
    for (name, ip) in &me.config.extra_hosts {
        let ip = if ip == crate::netflags::HOST_GATEWAY {
            gateway.clone()
        } else {
            ip.clone()
        };
        extra.push((name.clone(), ip));
    }
    let path = e.paths.container(&me.id).join("hosts");
    let text = rootfs::hosts_text(&extra);
    // A member being removed meanwhile has no file: nothing to update.
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).truncate(true).open(&path) {
        f.write_all(text.as_bytes())
            .ctx(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// The aliases a container has on a network.
pub fn aliases_on(c: &Container, network: &str) -> Vec<String> {
    c.config
        .endpoints()
        .into_iter()
        .find(|ep| ep.name == network)
        .map(|ep| ep.aliases)
        .unwrap_or_default()
}
