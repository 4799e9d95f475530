//! `lbox port CONTAINER [PRIVATE_PORT[/PROTO]]`: a running container's published ports.

use std::path::Path;

use anyhow::{bail, Result};
use clap::Args;

use super::containers::open;

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// Only this container port (PORT or PORT/PROTO).
    pub private_port: Option<String>,
}

pub fn port(root: &Path, a: PortArgs) -> Result<i32> {
    let e = open(root)?;
    let ct = e.find(&a.container)?;
    let bound = engine::netconnect::bindings(&e, &ct.id)?;
    let Some(want) = a.private_port else {
        for b in &bound {
            println!("{}/{} -> {}:{}", b.container_port, b.proto, b.host_ip, b.host_port);
        }
        return Ok(0);
    };
    let [(port, proto)] = network::ports::parse_exposed(&want)?[..] else {
        bail!("invalid port {want:?}: use PORT or PORT/PROTO, e.g. 80/tcp");
    };
    let hits: Vec<_> = bound
        .iter()
        .filter(|b| b.container_port == port && b.proto == proto)
        .collect();
    if hits.is_empty() {
        // Docker's exit code 1, as for any other "not there".
        eprintln!("lbox: no public port '{port}/{proto}' published for {}", ct.name);
        return Ok(1);
    }
    for b in hits {
        println!("{}:{}", b.host_ip, b.host_port);
    }
    Ok(0)
}
