//! Networks and address leases in the state database. The engine calls `allocate` inside the
//! transaction that writes the container's row, so an address is never given twice and a
//! removed container's lease goes with it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::subnet;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS networks(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL DEFAULT 'bridge',
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    bridge TEXT NOT NULL UNIQUE,
    internal INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS leases(
    network TEXT NOT NULL REFERENCES networks(id),
    address TEXT NOT NULL,
    container TEXT NOT NULL,
    PRIMARY KEY (network, address)
);
CREATE INDEX IF NOT EXISTS leases_container ON leases(container);
";

/// The default network's name, as Docker calls it.
pub const DEFAULT_NETWORK: &str = "bridge";

#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub driver: String,
    #[serde(serialize_with = "as_string")]
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub bridge: String,
    pub internal: bool,
    /// Nanoseconds since the epoch.
    pub created: i64,
    pub labels: BTreeMap<String, String>,
}

fn as_string<S: serde::Serializer>(n: &Ipv4Net, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&n.to_string())
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewNetwork {
    pub id: String,
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    /// The bridge's name; derived from the ID when empty.
    pub bridge: String,
    pub created: i64,
}

/// Docker's rule for network names.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() < 128;
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        )))
    }
}

/// The bridge device of a user network: `lbr-` and the ID's start (device names have 15 bytes).
pub fn bridge_name(id: &str) -> String {
    format!("lbr-{}", &id[..10.min(id.len())])
}

fn from_row(r: &Row) -> rusqlite::Result<Network> {
    let subnet: String = r.get("subnet")?;
    let gateway: String = r.get("gateway")?;
    let labels: String = r.get("labels")?;
    let bad = |what: &str, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("bad {what} {v:?}").into())
    };
    Ok(Network {
        id: r.get("id")?,
        name: r.get("name")?,
        driver: r.get("driver")?,
        subnet: subnet.parse().map_err(|_| bad("subnet", &subnet))?,
        gateway: gateway.parse().map_err(|_| bad("gateway", &gateway))?,
        bridge: r.get("bridge")?,
        internal: r.get::<_, i64>("internal")? != 0,
        created: r.get("created")?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
    })
}

/// Record a new network. `host_routes` are the host's own routes, which a subnet must not
/// shadow (those of LockBox's own bridges excepted).
pub fn create(c: &Connection, req: &NewNetwork, host_routes: &[Ipv4Net]) -> Result<Network> {
    check_name(&req.name)?;
    let existing = list(c)?;
    if existing.iter().any(|n| n.name == req.name) {
        return Err(Error::NameInUse(req.name.clone()));
    }
    let own: Vec<Ipv4Net> = existing.iter().map(|n| n.subnet).collect();
    let foreign: Vec<Ipv4Net> = host_routes.iter().filter(|r| !own.contains(r)).copied().collect();
    let net = match &req.subnet {
        Some(s) => {
            let net = subnet::parse(s)?;
            if let Some(o) = existing.iter().find(|o| subnet::overlaps(&o.subnet, &net)) {
                return Err(Error::Overlap {
                    subnet: net.to_string(),
                    other: o.name.clone(),
                    other_subnet: o.subnet.to_string(),
                });
            }
            if let Some(r) = foreign.iter().find(|r| subnet::overlaps(r, &net)) {
                return Err(Error::Invalid(format!(
                    "subnet {net} overlaps with the host's route to {r}; choose another --subnet"
                )));
            }
            net
        }
        None => {
            if req.gateway.is_some() {
                return Err(Error::Invalid("--gateway needs --subnet".into()));
            }
            let mut taken = own;
            taken.extend(foreign);
            subnet::pick_free(&taken)?
        }
    };
    let gateway = subnet::gateway(&net, req.gateway.as_deref())?;
    let bridge = if req.bridge.is_empty() {
        bridge_name(&req.id)
    } else {
        req.bridge.clone()
    };
    let labels = serde_json::to_string(&req.labels).map_err(|e| Error::Invalid(format!("labels: {e}")))?;
    c.execute(
        "INSERT INTO networks(id, name, driver, subnet, gateway, bridge, internal, created, labels)
         VALUES (?1, ?2, 'bridge', ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            req.id,
            req.name,
            net.to_string(),
            gateway.to_string(),
            bridge,
            req.internal as i64,
            req.created,
            labels
        ],
    )?;
    get(c, &req.id)?.ok_or_else(|| Error::NotFound(req.name.clone()))
}

pub fn get(c: &Connection, id: &str) -> Result<Option<Network>> {
    Ok(c.query_row("SELECT * FROM networks WHERE id = ?1", [id], from_row)
        .optional()?)
}

pub fn list(c: &Connection) -> Result<Vec<Network>> {
    let mut st = c.prepare_cached("SELECT * FROM networks ORDER BY created, name")?;
    let rows = st.query_map([], from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// A network by name, full ID or unique ID prefix.
pub fn find(c: &Connection, key: &str) -> Result<Network> {
    let all = list(c)?;
    if let Some(n) = all.iter().find(|n| n.name == key || n.id == key) {
        return Ok(n.clone());
    }
    let matches: Vec<&Network> = all
        .iter()
        .filter(|n| !key.is_empty() && n.id.starts_with(key))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::NotFound(key.to_string())),
        many => Err(Error::Invalid(format!(
            "network ID prefix {key:?} is ambiguous: it matches {}",
            many.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The containers holding an address on the network.
pub fn users(c: &Connection, network_id: &str) -> Result<Vec<String>> {
    let mut st = c.prepare_cached("SELECT DISTINCT container FROM leases WHERE network = ?1 ORDER BY container")?;
    let rows = st
        .query_map([network_id], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// Forget a network that no container uses. `name_of` turns container IDs into the names the
/// refusal lists.
pub fn remove(c: &Connection, net: &Network, name_of: impl Fn(&str) -> String) -> Result<()> {
    let users = users(c, &net.id)?;
    if !users.is_empty() {
        return Err(Error::InUse {
            name: net.name.clone(),
            containers: users.iter().map(|id| name_of(id)).collect::<Vec<_>>().join(", "),
        });
    }
    c.execute("DELETE FROM networks WHERE id = ?1", [&net.id])?;
    Ok(())
}

/// Lease an address on `net` to `container`: `requested` (`--ip`) if free, else the lowest free
/// one. Run it in the transaction that records the container.
pub fn allocate(c: &Connection, net: &Network, container: &str, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
    let leased: std::collections::HashSet<Ipv4Addr> = {
        let mut st = c.prepare_cached("SELECT address FROM leases WHERE network = ?1")?;
        let rows = st
            .query_map([&net.id], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        rows.iter().filter_map(|a| a.parse().ok()).collect()
    };
    let ip = match requested {
        Some(ip) => {
            if !subnet::usable(&net.subnet, ip) || ip == net.gateway {
                return Err(Error::Invalid(format!(
                    "address {ip} is not usable on network {} ({}, gateway {})",
                    net.name, net.subnet, net.gateway
                )));
            }
            if leased.contains(&ip) {
                return Err(Error::AddressInUse {
                    address: ip.to_string(),
                    network: net.name.clone(),
                });
            }
            ip
        }
        None => net
            .subnet
            .hosts()
            .find(|ip| *ip != net.gateway && !leased.contains(ip))
            .ok_or_else(|| Error::Exhausted {
                network: net.name.clone(),
                subnet: net.subnet.to_string(),
            })?,
    };
    c.execute(
        "INSERT INTO leases(network, address, container) VALUES (?1, ?2, ?3)",
        params![net.id, ip.to_string(), container],
    )?;
    Ok(ip)
}

/// Give back every address of `container`.
pub fn release(c: &Connection, container: &str) -> Result<()> {
    c.execute("DELETE FROM leases WHERE container = ?1", [container])?;
    Ok(())
}

/// Give back the container's address on one network.
pub fn release_on(c: &Connection, container: &str, network_id: &str) -> Result<()> {
    c.execute(
        "DELETE FROM leases WHERE container = ?1 AND network = ?2",
        [container, network_id],
    )?;
    Ok(())
}

/// The container's leases: (network ID, address).
pub fn leases_of(c: &Connection, container: &str) -> Result<Vec<(String, Ipv4Addr)>> {
    let mut st = c.prepare_cached("SELECT network, address FROM leases WHERE container = ?1 ORDER BY network")?;
    let rows = st
        .query_map([container], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(n, a)| a.parse().ok().map(|a| (n, a)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(SCHEMA).expect("schema");
        c
    }

    fn req(id: &str, name: &str, subnet: Option<&str>) -> NewNetwork {
        NewNetwork {
            id: id.into(),
            name: name.into(),
            subnet: subnet.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn networks_are_named_once_and_never_overlap() {
        let c = db();
        let a = create(&c, &req("aaaa0000000001", "front", Some("10.90.1.0/24")), &[]).expect("create");
        assert_eq!(
            (a.gateway.to_string(), a.bridge.as_str()),
            ("10.90.1.1".into(), "lbr-aaaa000000")
        );
        assert!(matches!(
            create(&c, &req("b1", "front", Some("10.90.2.0/24")), &[]),
            Err(Error::NameInUse(_))
        ));
        let e = create(&c, &req("b2", "back", Some("10.90.0.0/16")), &[]).unwrap_err();
        assert!(e.to_string().contains("overlaps with network front"), "{e}");
        let host = [subnet::parse("10.89.0.0/24").expect("route")];
        let auto = create(&c, &req("c1", "auto", None), &host).expect("auto");
        assert_eq!(auto.subnet.to_string(), "10.89.1.0/24", "skips the host's route");
        assert!(create(&c, &req("d1", "-bad", None), &[]).is_err());
        assert_eq!(find(&c, "aaaa").expect("prefix").name, "front");
        assert!(matches!(find(&c, "zzz"), Err(Error::NotFound(_))));
    }

    #[test]
    fn addresses_are_leased_once_and_released() {
        let c = db();
        let n = create(&c, &req("n1", "small", Some("10.91.0.0/29")), &[]).expect("create");
        // 10.91.0.1 is the gateway; .2 to .6 are for containers.
        let got: Vec<String> = (0..5)
            .map(|i| allocate(&c, &n, &format!("c{i}"), None).expect("lease").to_string())
            .collect();
        assert_eq!(got, ["10.91.0.2", "10.91.0.3", "10.91.0.4", "10.91.0.5", "10.91.0.6"]);
        assert!(matches!(allocate(&c, &n, "c9", None), Err(Error::Exhausted { .. })));
        release(&c, "c2").expect("release");
        assert!(matches!(
            allocate(&c, &n, "c9", Some("10.91.0.3".parse().expect("ip"))),
            Err(Error::AddressInUse { .. })
        ));
        assert!(
            allocate(&c, &n, "c9", Some("10.91.0.1".parse().expect("ip"))).is_err(),
            "gateway"
        );
        assert_eq!(allocate(&c, &n, "c9", None).expect("lease").to_string(), "10.91.0.4");
        let e = remove(&c, &n, |id| format!("name-{id}")).unwrap_err();
        assert!(e.to_string().contains("name-c0"), "{e}");
        for i in 0..10 {
            release(&c, &format!("c{i}")).expect("release");
        }
        remove(&c, &n, |id| id.to_string()).expect("remove");
        assert!(list(&c).expect("list").is_empty());
    }
}
