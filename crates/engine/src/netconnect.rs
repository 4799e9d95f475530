//! A container on a user network: its address leased (network::ipam), its veth pair set up in
//! its network namespace before its program starts (network::link), and the names of every
//! container on the network written into each member's /etc/hosts, kept current as members
//! come and go.

use std::fs::File;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use network::ipam::{self, Network};
use network::link::{self, Attachment, Netlink};

use crate::db::{self, Container};
use crate::error::{Context, Error, Result};
use crate::{networks, owner, rootfs, Engine};

/// Is this a user network (not "none" or "host")?
pub fn is_user_network(name: &str) -> bool {
    name != "none" && name != "host"
}

/// The host end of the container's veth pair (device names have 15 bytes).
pub fn host_if(id: &str) -> String {
    format!("lv{}", &id[..12.min(id.len())])
}

/// Put the container whose init is `pid` (created, not yet started) on its network.
pub fn attach(e: &Engine, ct: &Container, pid: i32) -> Result<()> {
    let c = &ct.config;
    if !is_user_network(&c.network) {
        return Ok(());
    }
    let net = networks::find(e, &c.network)?;
    let requested: Option<Ipv4Addr> = match c.ip.as_deref() {
        Some(ip) => Some(ip.parse().map_err(|_| Error::Invalid(format!("invalid --ip {ip:?}")))?),
        None => None,
    };
    let _lock = owner::acquire(&e.paths.network_lock(&net.id))?;
    let addr = {
        let tx = rusqlite::Transaction::new_unchecked(e.db(), rusqlite::TransactionBehavior::Immediate)?;
        // A lease left by a start that died half-way is this container's to reuse.
        ipam::release(&tx, &ct.id)?;
        let addr = ipam::allocate(&tx, &net, &ct.id, requested)?;
        tx.commit()?;
        addr
    };
    let done = (|| -> Result<()> {
        let nl = Netlink::open()?;
        let prefix = net.subnet.prefix_len();
        // Gone after a reboot, or removed by hand: the network's record is what counts.
        nl.ensure_bridge(&net.bridge, net.gateway, prefix)?;
        let netns_path = format!("/proc/{pid}/ns/net");
        let netns = File::open(&netns_path).ctx(|| format!("open {netns_path}"))?;
        let host_if = host_if(&ct.id);
        link::connect(
            &nl,
            netns.as_fd(),
            &Attachment {
                bridge: &net.bridge,
                host_if: &host_if,
                ifname: "eth0",
                addr,
                prefix,
                // An internal network has no way out.
                gateway: (!net.internal).then_some(net.gateway),
            },
        )?;
        write_hosts(e, &net)
    })();
    if done.is_err() {
        let _ = ipam::release(e.db(), &ct.id);
    }
    done
}

/// Take the container off its networks (its init has exited): give back its addresses and take
/// its name out of the other members' hosts files.
pub fn detach(e: &Engine, ct: &Container) -> Result<()> {
    let leases = ipam::leases_of(e.db(), &ct.id)?;
    if leases.is_empty() {
        return Ok(());
    }
    ipam::release(e.db(), &ct.id)?;
    // The veth pair is not deleted here: the kernel deletes it with the container's network
    // namespace, while deleting it ourselves waits for RCU grace periods (~15 ms). A pair still
    // there at the next start is deleted then (network::link::connect).
    for (net_id, _) in leases {
        if let Some(net) = ipam::get(e.db(), &net_id)? {
            let _lock = owner::acquire(&e.paths.network_lock(&net.id))?;
            write_hosts(e, &net)?;
        }
    }
    Ok(())
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

/// Rewrite the hosts file of every member of `net`: its own address under its hostname, name
/// and aliases, then every other member's under its name and aliases. Written in place: the
/// file is bind-mounted into the container, and a rename would leave the container the old one.
fn write_hosts(e: &Engine, net: &Network) -> Result<()> {
    let mut members: Vec<(Container, Ipv4Addr)> = Vec::new();
    for id in ipam::users(e.db(), &net.id)? {
        if let (Some(ct), Some((_, addr))) = (
            db::get(e.db(), &id)?,
            ipam::leases_of(e.db(), &id)?.into_iter().find(|(n, _)| *n == net.id),
        ) {
            members.push((ct, addr));
        }
    }
    for (me, my_addr) in &members {
        let mut extra = Vec::new();
        let mut mine = vec![me.config.hostname.clone(), me.name.clone()];
        mine.extend(me.config.network_aliases.iter().cloned());
        mine.dedup();
        extra.push((mine.join(" "), my_addr.to_string()));
        for (other, addr) in members.iter().filter(|(o, _)| o.id != me.id) {
            let mut names = vec![other.name.clone()];
            names.extend(other.config.network_aliases.iter().cloned());
            extra.push((names.join(" "), addr.to_string()));
        }
        let path = e.paths.container(&me.id).join("hosts");
        let text = rootfs::hosts_text(&extra);
        // A member being removed meanwhile has no file: nothing to update.
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).truncate(true).open(&path) {
            f.write_all(text.as_bytes())
                .ctx(|| format!("write {}", path.display()))?;
        }
    }
    Ok(())
}
