//! Published ports: `-p` parsed into port specs, host ports reserved by holding bound sockets
//! for as long as the container runs (so nothing else takes them, and a port in use is an error
//! before the container starts), and the bindings recorded in the state database for the
//! nftables DNAT rules (network::nft) and `lbox port`.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::str::FromStr;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ports(
    container TEXT NOT NULL,
    proto TEXT NOT NULL,
    host_ip TEXT NOT NULL,
    host_port INTEGER NOT NULL,
    container_port INTEGER NOT NULL,
    target TEXT NOT NULL,
    bridge TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ports_container ON ports(container);
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = Error;
    fn from_str(s: &str) -> Result<Proto> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(Error::Invalid(format!(
                "invalid protocol {other:?}: use tcp or udp (sctp is not supported)"
            ))),
        }
    }
}

/// One published port as asked for: `host_port` 0 means any free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    #[serde(default)]
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

fn port(s: &str, what: &str, flag: &str) -> Result<u16> {
    match s.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::Invalid(format!(
            "invalid {what} {s:?} in -p {flag:?}: want a number from 1 to 65535"
        ))),
    }
}

/// A port or a range `A-B`.
fn range(s: &str, what: &str, flag: &str) -> Result<(u16, u16)> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (port(a, what, flag)?, port(b, what, flag)?),
        None => {
            let p = port(s, what, flag)?;
            (p, p)
        }
    };
    if a > b {
        return Err(Error::Invalid(format!("invalid {what} range {s:?} in -p {flag:?}")));
    }
    Ok((a, b))
}

/// Docker's `-p [IP:][HOST:]CONTAINER[/PROTO]`, with port ranges; one spec per port.
pub fn parse(flag: &str) -> Result<Vec<PortSpec>> {
    let (addr, proto) = match flag.rsplit_once('/') {
        Some((a, p)) => (a, p.parse()?),
        None => (flag, Proto::Tcp),
    };
    if addr.starts_with('[') {
        return Err(Error::Invalid(format!(
            "-p {flag:?}: IPv6 host addresses are not supported yet; publish on an IPv4 address"
        )));
    }
    let parts: Vec<&str> = addr.split(':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c] => (None, None, *c),
        [h, c] => (None, Some(*h), *c),
        [ip, h, c] => (Some(*ip), (!h.is_empty()).then_some(*h), *c),
        _ => {
            return Err(Error::Invalid(format!(
                "invalid -p {flag:?}: use [IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]"
            )))
        }
    };
    let host_ip = match ip {
        None | Some("") | Some("0.0.0.0") => None,
        Some(ip) => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
            Error::Invalid(format!(
                "invalid host address {ip:?} in -p {flag:?}: want an IPv4 address"
            ))
        })?),
    };
    let (c0, c1) = range(ctr, "container port", flag)?;
    let hosts: Vec<u16> = match host {
        None => vec![0; usize::from(c1 - c0) + 1],
        Some(h) => {
            let (h0, h1) = range(h, "host port", flag)?;
            if h1 - h0 != c1 - c0 {
                return Err(Error::Invalid(format!(
                    "invalid -p {flag:?}: the host and container port ranges differ in size"
                )));
            }
            (h0..=h1).collect()
        }
    };
    Ok((c0..=c1)
        .zip(hosts)
        .map(|(c, h)| PortSpec {
            host_ip,
            host_port: h,
            container_port: c,
            proto,
        })
        .collect())
}

/// An image's or `--expose`'s port: `80`, `80/tcp`, `53/udp`, or a range.
pub fn parse_exposed(s: &str) -> Result<Vec<(u16, Proto)>> {
    let (p, proto) = match s.split_once('/') {
        Some((p, proto)) => (p, proto.parse()?),
        None => (s, Proto::Tcp),
    };
    let (a, b) = range(p, "exposed port", s)?;
    Ok((a..=b).map(|p| (p, proto)).collect())
}

/// A published port of a running container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Binding {
    pub proto: Proto,
    /// 0.0.0.0 for every address of the host.
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    pub container_port: u16,
    /// The container's address the traffic goes to.
    pub target: Ipv4Addr,
    /// The bridge the container is on.
    pub bridge: String,
}

impl Binding {
    /// The container port as Docker keys it: `80/tcp`.
    pub fn port_key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }
}

impl PortSpec {
    /// The container port as Docker keys it: `80/tcp`.
    pub fn port_key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }
}

/// Host ports held for a container: bound sockets that never listen (DNAT sends the traffic to
/// the container before they could see it).
pub struct Reserved {
    pub specs: Vec<(PortSpec, u16)>,
    pub sockets: Vec<OwnedFd>,
}

/// Bind every spec's host port (a free one for port 0) and keep the sockets.
pub fn reserve(specs: &[PortSpec]) -> Result<Reserved> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let mut out = Reserved {
        specs: Vec::new(),
        sockets: Vec::new(),
    };
    for s in specs {
        let ty = match s.proto {
            Proto::Tcp => SocketType::STREAM,
            Proto::Udp => SocketType::DGRAM,
        };
        let ip = s.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let io = |what: String| move |e: rustix::io::Errno| Error::Io { what, source: e.into() };
        let fd = rustix::net::socket_with(AddressFamily::INET, ty, SocketFlags::CLOEXEC, None)
            .map_err(io(format!("make a socket for port {}/{}", s.host_port, s.proto)))?;
        // No SO_REUSEADDR: two sockets that both set it may share a port none listens on.
        let addr = SocketAddrV4::new(ip, s.host_port);
        match rustix::net::bind(&fd, &addr) {
            Ok(()) => {}
            Err(rustix::io::Errno::ADDRINUSE) => {
                return Err(Error::PortInUse {
                    addr: format!("{ip}:{}", s.host_port),
                    proto: s.proto.to_string(),
                    container_port: s.container_port,
                })
            }
            Err(rustix::io::Errno::ADDRNOTAVAIL) => {
                return Err(Error::Invalid(format!(
                    "cannot publish on {ip}:{}: {ip} is not an address of this host",
                    s.host_port
                )))
            }
            Err(e) => return Err(io(format!("bind {ip}:{}/{}", s.host_port, s.proto))(e)),
        }
        let bound = rustix::net::getsockname(&fd)
            .map_err(io("read a bound port".into()))
            .and_then(|a| SocketAddrV4::try_from(a).map_err(|e| Error::Invalid(format!("bound address: {e}"))))?
            .port();
        out.specs.push((*s, bound));
        out.sockets.push(fd);
    }
    Ok(out)
}

/// Record a started container's bindings.
pub fn record(c: &Connection, container: &str, bindings: &[Binding]) -> Result<()> {
    let mut st = c.prepare_cached(
        "INSERT INTO ports(container, proto, host_ip, host_port, container_port, target, bridge)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for b in bindings {
        st.execute(params![
            container,
            b.proto.to_string(),
            b.host_ip.to_string(),
            b.host_port,
            b.container_port,
            b.target.to_string(),
            b.bridge
        ])?;
    }
    Ok(())
}

/// Forget a container's bindings; whether it had any.
pub fn release(c: &Connection, container: &str) -> Result<bool> {
    Ok(c.execute("DELETE FROM ports WHERE container = ?1", [container])? > 0)
}

fn query(c: &Connection, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Binding>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st
        .query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u16>(2)?,
                r.get::<_, u16>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(proto, ip, hp, cp, target, bridge)| {
            Some(Binding {
                proto: proto.parse().ok()?,
                host_ip: ip.parse().ok()?,
                host_port: hp,
                container_port: cp,
                target: target.parse().ok()?,
                bridge,
            })
        })
        .collect())
}

const COLUMNS: &str = "SELECT proto, host_ip, host_port, container_port, target, bridge FROM ports";

/// A container's bindings, by container port.
pub fn of(c: &Connection, container: &str) -> Result<Vec<Binding>> {
    query(
        c,
        &format!("{COLUMNS} WHERE container = ?1 ORDER BY container_port, proto, host_ip"),
        &[&container],
    )
}

/// Every binding (for the DNAT rules).
pub fn all(c: &Connection) -> Result<Vec<Binding>> {
    query(c, &format!("{COLUMNS} ORDER BY host_port, proto, host_ip"), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortSpec {
        let v = parse(s).expect(s);
        assert_eq!(v.len(), 1, "{s}");
        v[0]
    }

    #[test]
    fn docker_port_forms_parse() {
        let p = one("8080:80");
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.proto),
            (None, 8080, 80, Proto::Tcp)
        );
        let p = one("127.0.0.1:5353:53/udp");
        assert_eq!(
            (p.host_ip, p.host_port, p.container_port, p.proto),
            (Some(Ipv4Addr::LOCALHOST), 5353, 53, Proto::Udp)
        );
        assert_eq!(one("80").host_port, 0);
        assert_eq!(one("127.0.0.1::80").host_port, 0);
        assert_eq!(one("0.0.0.0:1:2").host_ip, None);
        let r = parse("8000-8002:9000-9002").expect("range");
        assert_eq!(
            r.iter().map(|p| (p.host_port, p.container_port)).collect::<Vec<_>>(),
            [(8000, 9000), (8001, 9001), (8002, 9002)]
        );
        for bad in [
            "",
            "0",
            "70000",
            "a:80",
            "1:2:3:4",
            "80/sctp",
            "8000-8001:80",
            "[::1]:80:80",
            "x.y:1:2",
            "5-4",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert_eq!(parse_exposed("53/udp").expect("exposed"), [(53, Proto::Udp)]);
        assert_eq!(parse_exposed("80").expect("exposed"), [(80, Proto::Tcp)]);
    }

    #[test]
    fn a_port_in_use_is_refused_and_port_zero_gets_a_free_one() {
        let spec = |p| PortSpec {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: p,
            container_port: 80,
            proto: Proto::Tcp,
        };
        let held = reserve(&[spec(0)]).expect("reserve");
        let got = held.specs[0].1;
        assert_ne!(got, 0);
        let e = reserve(&[spec(got)]).err().expect("in use");
        assert!(e.to_string().contains("already in use"), "{e}");
        drop(held);
        assert!(reserve(&[spec(got)]).is_ok(), "free again once the holder is gone");
    }

    #[test]
    fn bindings_round_trip_through_the_database() {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(SCHEMA).expect("schema");
        let b = Binding {
            proto: Proto::Udp,
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 5353,
            container_port: 53,
            target: "10.87.0.2".parse().expect("ip"),
            bridge: "lbox0".into(),
        };
        record(&c, "c1", std::slice::from_ref(&b)).expect("record");
        assert_eq!(of(&c, "c1").expect("of"), std::slice::from_ref(&b));
        assert_eq!(all(&c).expect("all"), [b]);
        assert!(release(&c, "c1").expect("release"));
        assert!(!release(&c, "c1").expect("release again"));
        assert!(all(&c).expect("all").is_empty());
    }
}
