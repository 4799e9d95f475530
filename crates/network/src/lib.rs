//! LockBox's container networking: bridge networks with IPAM in the state database, veth pairs
//! into container network namespaces (set up through netlink), nftables NAT and published
//! ports, and names.

pub mod error;
pub mod ipam;
pub mod link;
pub mod nft;
pub mod ports;
pub mod subnet;

pub use error::{Error, Result};
