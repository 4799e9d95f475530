//! Links through netlink (rtnetlink): the bridge of a network, and a veth pair whose one end
//! joins the bridge and whose other end becomes the container's `eth0`, with its address and
//! default route, inside the container's network namespace.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures_util::stream::TryStreamExt;
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{Error, Result};

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

/// A netlink connection in the network namespace of the thread that opened it.
pub struct Netlink {
    rt: tokio::runtime::Runtime,
    handle: Handle,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let what = what.into();
    move |e| Error::Netlink {
        what,
        msg: e.to_string(),
    }
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::Io {
                what: "start the netlink event loop".into(),
                source: e,
            })?;
        let handle = rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Error::Io {
                what: "open a netlink socket".into(),
                source: e,
            })?;
            tokio::spawn(conn);
            Ok::<_, Error>(handle)
        })?;
        Ok(Netlink { rt, handle })
    }

    fn block<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The interface index of `name` and whether it is up, if there is such a link.
    fn lookup(&self, name: &str) -> Result<Option<(u32, bool)>> {
        use rtnetlink::packet_route::link::LinkFlags;
        self.block(async {
            let mut links = self.handle.link().get().match_name(name.to_string()).execute();
            match links.try_next().await {
                Ok(l) => Ok(l.map(|l| (l.header.index, l.header.flags.contains(LinkFlags::Up)))),
                Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
                Err(e) => Err(nl(format!("look up link {name}"))(e)),
            }
        })
    }

    /// The interface index of `name`, if there is such a link.
    pub fn index(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.lookup(name)?.map(|(i, _)| i))
    }

    fn must_index(&self, name: &str) -> Result<u32> {
        self.index(name)?.ok_or_else(|| Error::Netlink {
            what: format!("link {name}"),
            msg: "no such device".into(),
        })
    }

    /// Make the bridge if it is missing, give it the gateway address, and bring it up. A bridge
    /// that is there and up is taken as it is (one lookup: this runs at every container start).
    pub fn ensure_bridge(&self, name: &str, gateway: Ipv4Addr, prefix: u8) -> Result<()> {
        let found = self.lookup(name)?;
        if found.is_some_and(|(_, up)| up) {
            return Ok(());
        }
        if found.is_none() {
            let made = self.block(self.handle.link().add(LinkBridge::new(name).build()).execute());
            match made {
                Ok(()) => {}
                // Made meanwhile by another lbox: fine.
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => return Err(nl(format!("create bridge {name}"))(e)),
            }
        }
        let idx = self.must_index(name)?;
        match self.block(self.handle.address().add(idx, IpAddr::V4(gateway), prefix).execute()) {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(nl(format!("give bridge {name} address {gateway}/{prefix}"))(e)),
        }
        self.up(idx, name)
    }

    fn up(&self, idx: u32, name: &str) -> Result<()> {
        self.block(
            self.handle
                .link()
                .set(LinkUnspec::new_with_index(idx).up().build())
                .execute(),
        )
        .map_err(nl(format!("bring up {name}")))
    }

    /// Delete a link (a bridge, or either end of a veth pair, which takes the other with it).
    /// A link that is already gone is not an error.
    pub fn delete(&self, name: &str) -> Result<()> {
        let Some(idx) = self.index(name)? else { return Ok(()) };
        match self.block(self.handle.link().del(idx).execute()) {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
            Err(e) => Err(nl(format!("delete link {name}"))(e)),
        }
    }

    /// Create the veth pair `host`/`peer` with `peer` made straight inside the namespace `netns`
    /// (moving a device between namespaces waits for RCU grace periods: ~20 ms here), and put
    /// `host` on `bridge`, up.
    fn veth_into(&self, bridge: &str, host: &str, peer: &str, netns: BorrowedFd) -> Result<()> {
        use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
        use rtnetlink::LinkMessageBuilder;
        let br = self.must_index(bridge)?;
        // (The peer cannot be made up here: the kernel refuses while the pair is not yet joined.)
        let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        // One request: the kernel enslaves and brings up a new link it is given a controller
        // and IFF_UP for (one round trip and one name lookup fewer than a second request).
        let pair = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_string())
            .controller(br)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        self.block(self.handle.link().add(pair).execute())
            .map_err(nl(format!("create veth pair {host} on bridge {bridge}")))
    }

    /// Inside a container's namespace: address `to`, bring it and the loopback up, and route
    /// everything else through `gateway`.
    fn configure(&self, to: &str, addr: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr>) -> Result<()> {
        let idx = self.must_index(to)?;
        self.block(self.handle.address().add(idx, IpAddr::V4(addr), prefix).execute())
            .map_err(nl(format!("give {to} address {addr}/{prefix}")))?;
        self.up(idx, to)?;
        if let Some(lo) = self.index("lo")? {
            self.up(lo, "lo")?;
        }
        if let Some(gw) = gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build();
            self.block(self.handle.route().add(route).execute())
                .map_err(nl(format!("add default route via {gw}")))?;
        }
        Ok(())
    }
}

/// Let a bridge carry traffic from the host's loopback (published ports on 127.0.0.1 are DNAT
/// rules; network::nft drops every other loopback-addressed packet arriving on a bridge).
pub fn route_localnet(bridge: &str) -> Result<()> {
    let knob = format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet");
    if std::fs::read_to_string(&knob).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(&knob, "1").map_err(|e| Error::Io {
        what: format!("set {knob}"),
        source: e,
    })
}

/// Run `f` with a netlink connection inside the network namespace `netns` (on a thread of its
/// own, so that this thread's namespace never changes).
pub fn in_netns<T: Send>(netns: BorrowedFd, f: impl FnOnce(&Netlink) -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| Error::Io {
                what: "enter the container's network namespace".into(),
                source: e.into(),
            })?;
            f(&Netlink::open()?)
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Invalid("the netlink thread panicked".into())))
    })
}

/// One container's link to a bridge network.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    pub bridge: &'a str,
    /// The host end's name (unique per container and network).
    pub host_if: &'a str,
    /// The name inside the container (`eth0`).
    pub ifname: &'a str,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

/// Connect the namespace `netns` to a bridge: a veth pair, addressed and routed. On failure
/// nothing is left behind (deleting the host end deletes the pair).
pub fn connect(host: &Netlink, netns: BorrowedFd, a: &Attachment) -> Result<()> {
    // Left by an earlier run of the same container whose namespace the kernel is still tearing
    // down (it deletes the pair then, asynchronously).
    host.delete(a.host_if)?;
    let done = host
        .veth_into(a.bridge, a.host_if, a.ifname, netns)
        .and_then(|()| in_netns(netns, |n| n.configure(a.ifname, a.addr, a.prefix, a.gateway)));
    if done.is_err() {
        let _ = host.delete(a.host_if);
    }
    done
}
