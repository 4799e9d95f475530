//! `lbox network …`: bridge networks (create, ls, inspect, rm, prune, connect, disconnect).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::containers::open;
use super::output::{print_table, table};
use engine::networks;

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show networks (JSON).
    Inspect(InspectArgs),
    /// Remove networks no container uses.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove every network no container uses.
    Prune(PruneArgs),
    /// Connect a container to a network (at once if it runs).
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
}

#[derive(Args, Debug)]
pub struct ConnectArgs {
    pub network: String,
    pub container: String,
    /// IPv4 address on the network.
    #[arg(long)]
    pub ip: Option<String>,
    /// Another name the network's other containers know this one by.
    #[arg(long)]
    pub alias: Vec<String>,
}

#[derive(Args, Debug)]
pub struct DisconnectArgs {
    pub network: String,
    pub container: String,
    /// Accepted for Docker compatibility.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The network's name.
    pub name: String,
    /// Driver (only "bridge").
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR form, e.g. 10.89.5.0/24 (a free /24 of 10.89.0.0/16 when absent).
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway address (the subnet's first address when absent).
    #[arg(long)]
    pub gateway: Option<String>,
    /// No way out of the network: containers reach each other only.
    #[arg(long)]
    pub internal: bool,
    /// Set metadata (KEY=VALUE).
    #[arg(long)]
    pub label: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Only IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// "json", "table" or a Go template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Go template for each network.
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Do not fail on networks that do not exist.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt (LockBox never prompts; accepted for Docker compatibility).
    #[arg(short, long)]
    pub force: bool,
}

pub fn main(root: &Path, c: NetworkCommand) -> Result<i32> {
    let e = open(root)?;
    match c {
        NetworkCommand::Create(a) => {
            if a.driver != "bridge" {
                bail!(
                    "network driver {:?} is not supported; LockBox networks use the bridge driver",
                    a.driver
                );
            }
            let mut labels = BTreeMap::new();
            engine::parse::labels(&a.label, &mut labels)?;
            let net = networks::create(
                &e,
                &networks::CreateRequest {
                    name: a.name,
                    subnet: a.subnet,
                    gateway: a.gateway,
                    internal: a.internal,
                    labels,
                },
            )?;
            println!("{}", net.id);
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            let nets = networks::list(&e)?;
            let id = |n: &network::ipam::Network| {
                if a.no_trunc {
                    n.id.clone()
                } else {
                    n.id[..12].to_string()
                }
            };
            if a.quiet {
                for n in &nets {
                    println!("{}", id(n));
                }
                return Ok(0);
            }
            let rows: Vec<serde_json::Value> = nets
                .iter()
                .map(|n| {
                    json!({"ID": id(n), "Name": n.name, "Driver": n.driver, "Scope": "local",
                           "Subnet": n.subnet.to_string(), "Internal": n.internal})
                })
                .collect();
            super::template::print_rows(a.format.as_deref(), &rows, |rows| {
                let mut t = table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
                for r in rows {
                    let f = |k: &str| r[k].as_str().unwrap_or("").to_string();
                    t.add_row(vec![f("ID"), f("Name"), f("Driver"), f("Scope")]);
                }
                print_table(&mut t);
            })?;
            Ok(0)
        }
        NetworkCommand::Connect(a) => {
            let ct = e.find(&a.container)?;
            engine::netconnect::connect(&e, &ct, &a.network, a.ip, a.alias)?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            let ct = e.find(&a.container)?;
            engine::netconnect::disconnect(&e, &ct, &a.network)?;
            Ok(0)
        }
        NetworkCommand::Inspect(a) => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match networks::find(&e, n) {
                    Ok(net) => out.push(network_json(&e, &net)?),
                    Err(err) => {
                        eprintln!("lbox: {err}");
                        code = 1;
                    }
                }
            }
            super::template::print_inspect(a.format.as_deref(), &out)?;
            Ok(code)
        }
        NetworkCommand::Rm(a) => {
            let mut code = 0;
            for n in &a.names {
                match networks::remove(&e, n) {
                    Ok(_) => println!("{n}"),
                    Err(engine::Error::Network(network::Error::NotFound(_))) if a.force => {}
                    Err(err) => {
                        eprintln!("lbox: {err}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCommand::Prune(_) => {
            let gone = networks::prune(&e)?;
            if !gone.is_empty() {
                println!("Deleted Networks:");
                for n in gone {
                    println!("{n}");
                }
            }
            Ok(0)
        }
    }
}

fn network_json(e: &engine::Engine, n: &network::ipam::Network) -> Result<serde_json::Value> {
    Ok(json!({
        "Name": n.name,
        "Id": n.id,
        "Created": engine::time::rfc3339(n.created),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Config": [{"Subnet": n.subnet.to_string(), "Gateway": n.gateway.to_string()}]},
        "Internal": n.internal,
        "Options": {"com.docker.network.bridge.name": n.bridge},
        "Labels": n.labels,
        "Containers": networks::users(e, n)?,
    }))
}
