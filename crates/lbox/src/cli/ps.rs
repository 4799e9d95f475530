//! `ps`: the container list, with Docker's columns, filters and --format.

use std::path::Path;

use anyhow::{bail, Result};
use clap::Args;
use engine::{Container, State};
use serde_json::{json, Value};

use super::containers::open;
use super::output::{self, print_table, table};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the n last created containers (includes all states).
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_hyphen_values = true)]
    pub last: i64,
    /// Show the latest created container.
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Filter output (id=, name=, label=KEY[=VALUE], status=, exited=, ancestor=, health=).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output format: table (default), json, or a Go template.
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Also list the containers builds run their steps in.
    #[arg(long)]
    pub external: bool,
}

fn secs(ns: i64) -> i64 {
    ns / 1_000_000_000
}

fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        172_800..=1_209_599 => format!("{} days", s / 86_400),
        _ => format!("{} weeks", s / 604_800),
    }
}

/// Docker's STATUS column.
pub fn status_text(c: &Container) -> String {
    let now = secs(engine::time::now_ns());
    let health = match c.health.as_str() {
        "" => String::new(),
        "starting" => " (health: starting)".into(),
        h => format!(" ({h})"),
    };
    match c.state {
        State::Created => "Created".into(),
        State::Running => format!("Up {}{health}", human_duration(now - secs(c.started))),
        State::Paused => format!("Up {} (Paused)", human_duration(now - secs(c.started))),
        State::Restarting => format!(
            "Restarting ({}) {} ago",
            c.exit_code,
            human_duration(now - secs(c.finished))
        ),
        State::Exited => format!(
            "Exited ({}) {} ago",
            c.exit_code,
            human_duration(now - secs(c.finished))
        ),
        State::Dead => "Dead".into(),
    }
}

fn command_text(c: &Container, trunc: bool) -> String {
    let cmd = c.config.argv().join(" ");
    let cmd = if trunc && cmd.chars().count() > 20 {
        format!("{}…", cmd.chars().take(19).collect::<String>())
    } else {
        cmd
    };
    format!("\"{cmd}\"")
}

fn labels_text(c: &Container) -> String {
    c.config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The fields a --format template can use (Docker's names).
pub fn row(c: &Container, trunc: bool, ports: &str) -> Value {
    json!({
        "ID": if trunc { c.short_id().to_string() } else { c.id.clone() },
        "Image": c.config.image,
        "Command": command_text(c, trunc),
        "CreatedAt": engine::time::rfc3339(c.created),
        "RunningFor": format!("{} ago", human_duration(secs(engine::time::now_ns()) - secs(c.created))),
        "Status": status_text(c),
        "State": c.state.as_str(),
        "Ports": ports,
        "Names": c.name,
        "Labels": labels_text(c),
        "Mounts": c.config.mounts.iter().map(|m| if m.source.is_empty() { m.target.clone() } else { m.source.clone() }).collect::<Vec<_>>().join(","),
        "Networks": match c.config.endpoints() {
            eps if eps.is_empty() => c.config.network.clone(),
            eps => eps.iter().map(|ep| ep.name.as_str()).collect::<Vec<_>>().join(","),
        },
        "ExitCode": c.exit_code,
    })
}

/// Docker's PORTS column: published ports as `0.0.0.0:8080->80/tcp`, the others exposed as
/// `80/tcp`.
fn ports_text(e: &engine::Engine, c: &Container) -> String {
    let bound = if c.state.is_active() {
        engine::netconnect::bindings(e, &c.id).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut out: Vec<String> = bound
        .iter()
        .map(|b| format!("{}:{}->{}/{}", b.host_ip, b.host_port, b.container_port, b.proto))
        .collect();
    for p in &c.config.exposed_ports {
        if !bound.iter().any(|b| b.port_key() == *p) {
            out.push(p.clone());
        }
    }
    out.join(", ")
}

fn matches(c: &Container, filters: &[(String, String)]) -> Result<bool> {
    // Docker: values of one key are OR-ed, different keys AND-ed.
    let mut keys: Vec<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.dedup();
    for key in keys {
        let any = filters.iter().filter(|(k, _)| k == key).any(|(_, v)| match key {
            "id" => c.id.starts_with(v.as_str()),
            "name" => c.name.contains(v.as_str()),
            "label" => match v.split_once('=') {
                Some((k, val)) => c.config.labels.get(k).is_some_and(|x| x == val),
                None => c.config.labels.contains_key(v.as_str()),
            },
            "status" => c.state.as_str() == v,
            "exited" => c.state == State::Exited && c.exit_code.to_string() == *v,
            "ancestor" => c.config.image == *v || c.config.image_id.contains(v.as_str()),
            "health" => c.health == *v || (v == "none" && c.health.is_empty()),
            _ => false,
        });
        if !any {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn parse_filters(raw: &[String], known: &[&str]) -> Result<Vec<(String, String)>> {
    raw.iter()
        .map(|f| {
            let Some((k, v)) = f.split_once('=') else {
                bail!("invalid filter {f:?}: use KEY=VALUE");
            };
            if !known.contains(&k) {
                bail!("invalid filter {k:?}: supported filters are {}", known.join(", "));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

pub fn ps(root: &Path, a: PsArgs) -> Result<i32> {
    let filters = parse_filters(
        &a.filter,
        &["id", "name", "label", "status", "exited", "ancestor", "health"],
    )?;
    if let Some((_, v)) = filters.iter().find(|(k, _)| k == "status") {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&v.as_str())
        {
            bail!("invalid filter status={v}: use created, restarting, running, removing, paused, exited or dead");
        }
    }
    let e = open(root)?;
    let mut list = e.containers()?;
    if !a.external {
        list.retain(|c| !c.config.labels.contains_key(engine::create::BUILD_STEP_LABEL));
    }
    let all = a.all || a.last >= 0 || a.latest || filters.iter().any(|(k, _)| k == "status" || k == "exited");
    if !all {
        list.retain(|c| c.state.is_active());
    }
    let mut kept = Vec::new();
    for c in list {
        if matches(&c, &filters)? {
            kept.push(c);
        }
    }
    let limit = if a.latest { 1 } else { a.last };
    if limit >= 0 {
        kept.truncate(limit as usize);
    }
    if a.quiet {
        for c in &kept {
            println!("{}", if a.no_trunc { c.id.as_str() } else { c.short_id() });
        }
        return Ok(0);
    }
    let trunc = !a.no_trunc;
    let ports: Vec<String> = kept.iter().map(|c| ports_text(&e, c)).collect();
    let rows: Vec<Value> = kept.iter().zip(&ports).map(|(c, p)| row(c, trunc, p)).collect();
    super::template::print_rows(a.format.as_deref(), &rows, |rows| {
        let mut t = table(&[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ]);
        for (c, r) in kept.iter().zip(rows) {
            t.add_row(vec![
                r["ID"].as_str().unwrap_or("").to_string(),
                c.config.image.clone(),
                command_text(c, trunc),
                output::ago(secs(c.created)),
                status_text(c),
                r["Ports"].as_str().unwrap_or("").to_string(),
                c.name.clone(),
            ]);
        }
        print_table(&mut t);
    })?;
    Ok(0)
}
