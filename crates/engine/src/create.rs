//! `create`: from the user's flags and the image's configuration to a container row and its
//! directory. Docker's rules decide which of the two wins for each setting.

use std::collections::BTreeMap;
use std::path::PathBuf;

use image::manifest::ImageConfig;

use crate::config::{ContainerConfig, HealthConfig, MountKind, MountSpec, Resources, RestartPolicy};
use crate::db::{self, Container};
use crate::error::{Context, Error, Result};
pub use crate::names::check_name;
use crate::{names, parse, volumes, Engine};

/// The label of the containers a build runs its steps in: `ps` lists them only with `--external`,
/// as podman lists buildah's.
pub const BUILD_STEP_LABEL: &str = "io.lbox.build-step";

/// Everything `run`/`create` take, as the user wrote it.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub image: String,
    /// Arguments after the image name.
    pub command: Vec<String>,
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub labels: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    /// `--device-read-bps` and the like: DEVICE:RATE each.
    pub device_read_bps: Vec<String>,
    pub device_write_bps: Vec<String>,
    pub device_read_iops: Vec<String>,
    pub device_write_iops: Vec<String>,
    pub read_only: bool,
    pub restart: Option<String>,
    pub auto_remove: bool,
    pub health_cmd: Option<String>,
    pub health_interval: Option<String>,
    pub health_timeout: Option<String>,
    pub health_retries: Option<u32>,
    pub health_start_period: Option<String>,
    pub no_healthcheck: bool,
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub security_opt: Vec<String>,
    pub network: Option<String>,
    pub ip: Option<String>,
    pub network_aliases: Vec<String>,
    pub publish: Vec<String>,
    pub publish_all: bool,
    pub expose: Vec<String>,
    pub add_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub runtime: Option<PathBuf>,
    pub log_opts: Vec<String>,
}

/// Check and resolve every flag before anything is written, so bad input leaves nothing behind.
pub fn build_config(req: &CreateRequest, image_id: &str, img: &ImageConfig) -> Result<ContainerConfig> {
    let ic = img.config.clone().unwrap_or_default();
    // Docker: --entrypoint replaces the image's entrypoint and drops its Cmd; arguments after
    // the image replace Cmd.
    let (entrypoint, cmd) = match &req.entrypoint {
        Some(e) if e.is_empty() => (Vec::new(), req.command.clone()),
        Some(e) => (vec![e.clone()], req.command.clone()),
        None => (
            ic.entrypoint.clone().unwrap_or_default(),
            if req.command.is_empty() {
                ic.cmd.clone().unwrap_or_default()
            } else {
                req.command.clone()
            },
        ),
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(Error::Invalid(format!(
            "no command specified: image {} has no Cmd or Entrypoint; give a command after the image name",
            req.image
        )));
    }
    let mut env = ic.env.clone().unwrap_or_default();
    let mut add_env = |kv: String| {
        let k = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|e| e.split('=').next() != Some(k.as_str()));
        env.push(kv);
    };
    for f in &req.env_files {
        for kv in parse::env_file(f)? {
            add_env(kv);
        }
    }
    for e in &req.env {
        if e.is_empty() || e.starts_with('=') {
            return Err(Error::Invalid(format!("invalid -e {e:?}: use KEY=VALUE or KEY")));
        }
        if let Some(kv) = parse::env_var(e) {
            add_env(kv);
        }
    }
    let mut mounts: Vec<MountSpec> = Vec::new();
    for v in &req.volumes {
        mounts.push(parse::volume(v)?);
    }
    for m in &req.mounts {
        mounts.push(parse::mount(m)?);
    }
    for t in &req.tmpfs {
        mounts.push(parse::tmpfs(t)?);
    }
    let mut seen = std::collections::HashSet::new();
    for m in &mounts {
        if !seen.insert(m.target.clone()) {
            return Err(Error::Invalid(format!("duplicate mount point {}", m.target)));
        }
    }
    // The image's VOLUMEs become anonymous volumes unless a mount covers them.
    for target in ic
        .volumes
        .as_ref()
        .map(|v| v.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if !mounts.iter().any(|m| m.target == target) {
            mounts.push(MountSpec {
                kind: MountKind::Volume,
                source: String::new(),
                target,
                readonly: false,
                anonymous: true,
                options: Vec::new(),
            });
        }
    }
    let resources = Resources {
        memory: req.memory.as_deref().map(|m| parse::size("--memory", m)).transpose()?,
        nano_cpus: req.cpus.as_deref().map(parse::cpus).transpose()?,
        pids_limit: req.pids_limit,
        block_io: crate::blkio::BlockIo {
            weight: crate::blkio::weight(req.blkio_weight)?,
            read_bps: throttles("--device-read-bps", &req.device_read_bps, true)?,
            write_bps: throttles("--device-write-bps", &req.device_write_bps, true)?,
            read_iops: throttles("--device-read-iops", &req.device_read_iops, false)?,
            write_iops: throttles("--device-write-iops", &req.device_write_iops, false)?,
        },
    };
    let restart = match &req.restart {
        Some(r) => RestartPolicy::parse(r).map_err(Error::Invalid)?,
        None => RestartPolicy {
            name: "no".into(),
            max_retries: 0,
        },
    };
    if req.auto_remove && restart.name != "no" {
        return Err(Error::Invalid(
            "conflicting options: --restart and --rm cannot be used together".into(),
        ));
    }
    let mut labels: BTreeMap<String, String> = ic.labels.clone().unwrap_or_default();
    parse::labels(&req.labels, &mut labels)?;
    let mut no_new_privileges = false;
    let mut seccomp = None;
    for o in &req.security_opt {
        match o.split_once(['=', ':']) {
            None if o == "no-new-privileges" => no_new_privileges = true,
            Some(("no-new-privileges", v)) => no_new_privileges = v != "false",
            Some(("seccomp", "unconfined")) => seccomp = Some("unconfined".to_string()),
            Some(("seccomp", path)) => {
                let text = std::fs::read_to_string(path).ctx(|| format!("read seccomp profile {path}"))?;
                seccomp = Some(text);
            }
            Some(("label", _)) | Some(("apparmor", _)) => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid --security-opt {o:?}: use no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json"
                )))
            }
        }
    }
    crate::spec::defaults::effective_capabilities(req.privileged, &req.cap_add, &req.cap_drop)
        .map_err(Error::Invalid)?;
    let health = health(req, &ic.other)?;
    let stop_signal = req
        .stop_signal
        .clone()
        .or(ic.stop_signal.clone())
        .unwrap_or_else(|| "SIGTERM".into());
    runtime::container::parse_signal(&stop_signal).map_err(|_| {
        Error::Invalid(format!(
            "invalid stop signal {stop_signal:?}: use a name like SIGTERM or a number"
        ))
    })?;
    let mut log_max_size = None;
    for o in &req.log_opts {
        match o.split_once('=') {
            Some(("max-size", v)) => log_max_size = Some(parse::size("--log-opt max-size", v)? as u64),
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid --log-opt {o:?}: supported: max-size=SIZE"
                )))
            }
        }
    }
    if let Some(rt) = &req.runtime {
        let found = if rt.components().count() > 1 {
            Some(rt.clone())
        } else {
            which(rt)
        };
        match found {
            Some(p) if p.is_file() => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "runtime {} not found: give the path of a runc-compatible runtime",
                    rt.display()
                )))
            }
        }
    }
    let mut config = ContainerConfig {
        image: req.image.clone(),
        image_id: image_id.to_string(),
        entrypoint,
        cmd,
        env,
        workdir: req.workdir.clone().or(ic.working_dir.clone()).unwrap_or_default(),
        user: req.user.clone().or(ic.user.clone()).unwrap_or_default(),
        hostname: req.hostname.clone().unwrap_or_default(),
        tty: req.tty,
        open_stdin: req.interactive,
        labels,
        stop_signal,
        stop_timeout: req.stop_timeout,
        mounts,
        resources,
        read_only: req.read_only,
        restart,
        auto_remove: req.auto_remove,
        health,
        init: req.init,
        cap_add: req.cap_add.clone(),
        cap_drop: req.cap_drop.clone(),
        privileged: req.privileged,
        no_new_privileges,
        seccomp,
        runtime: req.runtime.clone(),
        log_max_size,
        ..Default::default()
    };
    let image_exposed: Vec<String> = ic
        .exposed_ports
        .as_ref()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    crate::netflags::apply(req, &image_exposed, &mut config)?;
    Ok(config)
}

fn which(name: &std::path::Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn health(req: &CreateRequest, other: &BTreeMap<String, serde_json::Value>) -> Result<Option<HealthConfig>> {
    if req.no_healthcheck {
        return Ok(None);
    }
    // The image's Healthcheck (Docker's config field), with Go durations in nanoseconds.
    let img = other.get("Healthcheck");
    let img_test: Vec<String> = img
        .and_then(|h| h.get("Test"))
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default();
    let img_ms = |k: &str| {
        img.and_then(|h| h.get(k))
            .and_then(|v| v.as_u64())
            .map(|ns| ns / 1_000_000)
    };
    let test = match &req.health_cmd {
        Some(c) => vec!["CMD-SHELL".to_string(), c.clone()],
        None => img_test,
    };
    if test.is_empty() || test[0] == "NONE" {
        return Ok(None);
    }
    let dur = |flag: &str, v: &Option<String>, img: Option<u64>, def: u64| -> Result<u64> {
        match v {
            Some(s) => parse::duration_ms(flag, s),
            None => Ok(img.filter(|&n| n > 0).unwrap_or(def)),
        }
    };
    let interval_ms = dur("--health-interval", &req.health_interval, img_ms("Interval"), 30_000)?;
    if interval_ms == 0 {
        return Err(Error::Invalid("invalid --health-interval: must be more than 0".into()));
    }
    Ok(Some(HealthConfig {
        test,
        interval_ms,
        timeout_ms: dur("--health-timeout", &req.health_timeout, img_ms("Timeout"), 30_000)?,
        retries: req
            .health_retries
            .or(img
                .and_then(|h| h.get("Retries"))
                .and_then(|v| v.as_u64())
                .map(|n| n as u32))
            .filter(|&n| n > 0)
            .unwrap_or(3),
        start_period_ms: dur(
            "--health-start-period",
            &req.health_start_period,
            img_ms("StartPeriod"),
            0,
        )?,
    }))
}

fn unused_name(e: &Engine) -> Result<String> {
    loop {
        let n = names::generate_name()?;
        if db::by_name(e.db(), &n)?.is_none() {
            return Ok(n);
        }
    }
}

/// Write the container: name checked, volumes made, row inserted, directory created. One
/// failure undoes the rest.
pub fn create(e: &Engine, name: Option<&str>, mut config: ContainerConfig) -> Result<Container> {
    let id = names::new_id()?;
    let generated = name.is_none();
    let name = match name {
        Some(n) => {
            names::check_name(n)?;
            n.to_string()
        }
        None => unused_name(e)?,
    };
    if let Some(other) = config.network.strip_prefix("container:") {
        let o = e.find(other)?;
        config.network = format!("container:{}", o.id);
    } else if crate::netconnect::is_user_network(&config.network) {
        let net = if config.network == network::ipam::DEFAULT_NETWORK {
            crate::networks::ensure_default(e)?
        } else {
            crate::networks::find(e, &config.network)?
        };
        crate::netconnect::requested_ip(&net, config.ip.as_deref())?;
        if net.internal && !config.ports.is_empty() {
            return Err(Error::Invalid(format!(
                "network {} is internal: it has no way in or out, so ports cannot be published on it",
                net.name
            )));
        }
        config.network = net.name;
    }
    if config.hostname.is_empty() {
        config.hostname = if config.network == "host" {
            rustix::system::uname().nodename().to_string_lossy().into_owned()
        } else {
            id[..12].to_string()
        };
    }
    let ct = Container::new(id.clone(), name, config);
    let dir = e.paths.container(&id);
    std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
    let made = (|| -> Result<Container> {
        let mut ct = ct;
        let tx = e.db().unchecked_transaction()?;
        for m in ct.config.mounts.iter_mut().filter(|m| m.kind == MountKind::Volume) {
            if m.anonymous {
                m.source = names::new_id()?;
            }
            volumes::ensure(e, &m.source, m.anonymous)?;
        }
        // A generated name checked free above can be taken by a concurrent create before this
        // insert; Docker picks another one then, and so do we.
        loop {
            match db::insert(e.db(), &ct) {
                Err(Error::NameInUse { .. }) if generated => ct.name = unused_name(e)?,
                r => break r?,
            }
        }
        tx.commit()?;
        Ok(ct)
    })();
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    made
}

fn throttles(flag: &str, args: &[String], bytes: bool) -> Result<Vec<crate::blkio::Throttle>> {
    args.iter().map(|a| crate::blkio::throttle(flag, a, bytes)).collect()
}
