//! The network crate's errors: what failed, on which network or link, and what to do.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("network {0} not found; list networks with: lbox network ls")]
    NotFound(String),
    #[error("network name {0:?} is already in use; choose another name or remove it with: lbox network rm {0}")]
    NameInUse(String),
    #[error("network {name} is in use by containers {containers}; stop and remove them first, or disconnect them")]
    InUse { name: String, containers: String },
    #[error("subnet {subnet} overlaps with network {other} ({other_subnet}); choose another --subnet")]
    Overlap {
        subnet: String,
        other: String,
        other_subnet: String,
    },
    #[error("no free address left in network {network} ({subnet})")]
    Exhausted { network: String, subnet: String },
    #[error("address {address} is already in use on network {network}")]
    AddressInUse { address: String, network: String },
    #[error("host port {addr}/{proto} is already in use (asked for container port {container_port}); choose another with -p HOST_PORT:{container_port}, or stop what holds it")]
    PortInUse {
        addr: String,
        proto: String,
        container_port: u16,
    },
    #[error("netlink: {what}: {msg}")]
    Netlink { what: String, msg: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Db(#[from] rusqlite::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
