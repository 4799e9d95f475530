//! One function per runc command; each returns the process's exit code.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use runtime::container::{self, CreateOpts};
use runtime::exec::{self, ExecArgs as RtExecArgs, ExecOpts};
use runtime::state::{Status, Store};

use super::cli::{self, Cli, Command};
use super::spec_template;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/lbox-runc");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Path::new(&d).join("lbox-runc"),
        _ => std::env::temp_dir().join(format!("lbox-runc-{}", nix::unistd::geteuid())),
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir().context("current directory")?.join(p))
}

pub fn dispatch(cli: &Cli) -> Result<i32> {
    if cli.version {
        println!(
            "lbox-runc version {VERSION}\ncommit: lbox-{VERSION}\nspec: {}",
            runtime::state::OCI_VERSION
        );
        return Ok(0);
    }
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup is not supported yet; configure your engine to use the cgroupfs cgroup manager");
    }
    let store = Store::new(cli.root.clone().unwrap_or_else(default_root));
    let Some(cmd) = &cli.command else {
        bail!("no command given; see: lbox-runc --help");
    };
    match cmd {
        Command::Create(a) => {
            container::create(&store, &create_opts(a)?, true)?;
            Ok(0)
        }
        Command::Start(a) => {
            container::start(&store, &a.id)?;
            Ok(0)
        }
        Command::Run(a) => run(&store, a, cli.debug),
        Command::State(a) => state(&store, &a.id),
        Command::Kill(a) => {
            let sig = container::parse_signal(a.signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill_container(&store, &a.id, sig, a.all)?;
            Ok(0)
        }
        Command::Delete(a) => {
            container::delete(&store, &a.id, a.force)?;
            Ok(0)
        }
        Command::Exec(a) => exec_cmd(&store, a),
        Command::Ps(a) => ps(&store, a),
        Command::List(a) => list(&store, a),
        Command::Pause(a) => {
            container::pause(&store, &a.id)?;
            Ok(0)
        }
        Command::Resume(a) => {
            container::resume(&store, &a.id)?;
            Ok(0)
        }
        Command::Update(a) => update(&store, a),
        Command::Events(a) => events(&store, a),
        Command::Spec(a) => spec(a, cli.rootless.as_deref() == Some("true")),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&super::features::features()).unwrap_or_default()
            );
            Ok(0)
        }
    }
}

fn create_opts(a: &cli::CreateArgs) -> Result<CreateOpts> {
    Ok(CreateOpts {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.as_deref().map(absolute).transpose()?,
        console_socket: a.console_socket.clone(),
        pidfd_socket: a.pidfd_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        own_console: false,
    })
}

fn run(store: &Store, a: &cli::RunArgs, debug: bool) -> Result<i32> {
    let mut opts = create_opts(&a.create)?;
    if a.detach {
        let c = container::create(store, &opts, false)?;
        c.start()?;
        return Ok(0);
    }
    // Block the signals we forward before the clone, so that an early exit of the container
    // cannot be missed (the SIGCHLD stays pending until we wait for it).
    let set = container::forwarded_signals();
    set.thread_block().context("block signals")?;
    opts.own_console = opts.console_socket.is_none();
    let t0 = std::time::Instant::now();
    let c = container::create(store, &opts, false)?;
    let t1 = t0.elapsed();
    let pid = c.record.pid;
    let master = c.console.as_ref().map(runtime::tty::receive_master);
    if let Some(Ok(m)) = &master {
        runtime::tty::inherit_size(m);
    }
    let started = c.start();
    let code = match (started, master) {
        (Err(e), _) | (Ok(()), Some(Err(e))) => Err(e),
        (Ok(()), Some(Ok(m))) => runtime::tty::relay(m, pid),
        (Ok(()), None) => container::wait_foreground(pid),
    };
    let t2 = t0.elapsed();
    let cleanup = container::destroy(store, &c.record);
    if debug {
        eprintln!(
            "lbox-runc: debug: create {t1:?}, start+wait {:?}, destroy {:?}",
            t2 - t1,
            t0.elapsed() - t2
        );
    }
    let code = code?;
    cleanup?;
    Ok(code)
}

fn state(store: &Store, id: &str) -> Result<i32> {
    let rec = store.load(id)?;
    let status = store.status(&rec);
    println!("{}", serde_json::to_string_pretty(&rec.oci_state(status))?);
    Ok(0)
}

fn exec_cmd(store: &Store, a: &cli::ExecArgs) -> Result<i32> {
    let rec = store.load(&a.id)?;
    let process = match &a.process {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("read process file {}", path.display()))?;
            let p = runtime::spec::parse_process(path, &text)?;
            if p.args().as_ref().is_none_or(|v| v.is_empty()) {
                bail!("{}: field `args`: must name the program to run", path.display());
            }
            if !p.cwd().is_absolute() {
                bail!("{}: field `cwd`: must be an absolute path", path.display());
            }
            p
        }
        None => {
            if a.command.is_empty() {
                bail!("exec needs a command: lbox-runc exec {} COMMAND [ARG...]", a.id);
            }
            exec::process_from_args(
                rec.process.as_ref(),
                &RtExecArgs {
                    args: a.command.clone(),
                    env: a.env.clone(),
                    cwd: a.cwd.clone(),
                    user: a.user.clone(),
                    additional_gids: a.additional_gids.clone(),
                    tty: a.tty,
                    caps: a.cap.clone(),
                    no_new_privs: a.no_new_privs,
                },
            )?
        }
    };
    let code = exec::exec(
        store,
        &ExecOpts {
            id: a.id.clone(),
            process,
            pid_file: a.pid_file.as_deref().map(absolute).transpose()?,
            console_socket: a.console_socket.clone(),
            pidfd_socket: a.pidfd_socket.clone(),
            detach: a.detach,
            preserve_fds: a.preserve_fds,
            ignore_paused: a.ignore_paused,
        },
    )?;
    Ok(code)
}

fn ps(store: &Store, a: &cli::PsArgs) -> Result<i32> {
    let rec = store.load(&a.id)?;
    let pids = rec.cgroup.pids();
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    if a.format != "table" {
        bail!("--format {:?}: use table or json", a.format);
    }
    let args: Vec<String> = if a.ps_args.iter().all(|s| s.is_empty()) {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps(1)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| anyhow!("couldn't find PID field in ps output"))?;
    println!("{header}");
    for l in lines {
        if let Some(pid) = l.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()) {
            if pids.contains(&pid) {
                println!("{l}");
            }
        }
    }
    Ok(0)
}

fn list(store: &Store, a: &cli::ListArgs) -> Result<i32> {
    let mut rows = Vec::new();
    for id in store.ids()? {
        let Ok(rec) = store.load(&id) else { continue };
        let status = store.status(&rec);
        rows.push((rec, status));
    }
    if a.quiet {
        for (r, _) in &rows {
            println!("{}", r.id);
        }
        return Ok(0);
    }
    if a.format == "json" {
        let v: Vec<_> = rows.iter().map(|(r, s)| r.oci_state(*s)).collect();
        if v.is_empty() {
            println!("null");
        } else {
            println!("{}", serde_json::to_string(&v)?);
        }
        return Ok(0);
    }
    println!(
        "{:<12}   {:<8} {:<10} {:<40} {:<32} OWNER",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for (r, s) in &rows {
        let pid = if *s == Status::Stopped { 0 } else { r.pid };
        println!(
            "{:<12}   {:<8} {:<10} {:<40} {:<32} {}",
            r.id,
            pid,
            s.to_string(),
            r.bundle.display(),
            r.created,
            owner(&store.dir(&r.id))
        );
    }
    Ok(0)
}

/// The owner of a container's state directory, as a user name (or #uid), as runc shows it.
fn owner(dir: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return String::new();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid))
        .map_or_else(|| format!("#{uid}"), |f| f[0].to_string())
}

/// "64m", "1g", "1024" to bytes; -1 stays -1 (unlimited).
fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow!("invalid size {s:?}: use a number with an optional k, m, g or t suffix"))?;
    Ok((n * mult as f64) as i64)
}

fn update(store: &Store, a: &cli::UpdateArgs) -> Result<i32> {
    let mut res: LinuxResources = match &a.resources {
        Some(src) => {
            let mut text = String::new();
            if src == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read resources from stdin")?;
            } else {
                text = std::fs::read_to_string(src).with_context(|| format!("read resources file {src}"))?;
            }
            let de = &mut serde_json::Deserializer::from_str(&text);
            serde_path_to_error_shim(de, src)?
        }
        None => LinuxResources::default(),
    };
    let mut mem = (*res.memory()).unwrap_or_default();
    let mut mem_set = res.memory().is_some();
    if let Some(m) = &a.memory {
        mem.set_limit(Some(parse_bytes(m)?));
        mem_set = true;
    }
    if let Some(m) = &a.memory_reservation {
        mem.set_reservation(Some(parse_bytes(m)?));
        mem_set = true;
    }
    if let Some(m) = &a.memory_swap {
        mem.set_swap(Some(parse_bytes(m)?));
        mem_set = true;
    }
    if mem_set {
        res.set_memory(Some(mem));
    }
    let mut cpu = res.cpu().clone().unwrap_or_default();
    let mut cpu_set = res.cpu().is_some();
    macro_rules! cpu_opt {
        ($field:expr, $setter:ident) => {
            if let Some(v) = $field.clone() {
                cpu.$setter(Some(v));
                cpu_set = true;
            }
        };
    }
    cpu_opt!(a.cpu_period, set_period);
    cpu_opt!(a.cpu_quota, set_quota);
    cpu_opt!(a.cpu_share, set_shares);
    cpu_opt!(a.cpu_rt_period, set_realtime_period);
    cpu_opt!(a.cpu_rt_runtime, set_realtime_runtime);
    cpu_opt!(a.cpuset_cpus, set_cpus);
    cpu_opt!(a.cpuset_mems, set_mems);
    if cpu_set {
        res.set_cpu(Some(cpu));
    }
    if let Some(l) = a.pids_limit {
        let mut p = oci_spec::runtime::LinuxPids::default();
        p.set_limit(l);
        res.set_pids(Some(p));
    }
    if let Some(w) = a.blkio_weight {
        let mut b = res.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        res.set_block_io(Some(b));
    }
    // The device rules are set at create: an update never replaces them.
    res.set_devices(None);
    container::update(store, &a.id, &res)?;
    Ok(0)
}

fn serde_path_to_error_shim(
    de: &mut serde_json::Deserializer<serde_json::de::StrRead<'_>>,
    src: &str,
) -> Result<LinuxResources> {
    serde::Deserialize::deserialize(de).map_err(|e| anyhow!("{src}: invalid resources JSON: {e}"))
}

fn parse_interval(s: &str) -> Result<Duration> {
    let bad = || anyhow!("--interval {s:?}: use a duration like 5s or 500ms");
    if let Some(ms) = s.strip_suffix("ms") {
        return Ok(Duration::from_millis(ms.parse().map_err(|_| bad())?));
    }
    if let Some(sec) = s.strip_suffix('s') {
        return Ok(Duration::from_secs_f64(sec.parse().map_err(|_| bad())?));
    }
    if let Some(m) = s.strip_suffix('m') {
        return Ok(Duration::from_secs(60 * m.parse::<u64>().map_err(|_| bad())?));
    }
    Err(bad())
}

fn events(store: &Store, a: &cli::EventsArgs) -> Result<i32> {
    let interval = parse_interval(&a.interval)?;
    let rec = store.load(&a.id)?;
    if a.stats {
        if store.status(&rec) == Status::Stopped {
            bail!("container {} is not running", a.id);
        }
        println!(
            "{}",
            serde_json::json!({"type": "stats", "id": a.id, "data": rec.cgroup.stats()})
        );
        return Ok(0);
    }
    // Stats every interval; OOM kills as soon as the counter moves (checked every 100 ms).
    let tick = Duration::from_millis(100).min(interval);
    let mut ooms = rec.cgroup.oom_kills();
    let mut next_stats = std::time::Instant::now();
    loop {
        if store.status(&rec) == Status::Stopped {
            return Ok(0);
        }
        let now = rec.cgroup.oom_kills();
        if now > ooms {
            println!("{}", serde_json::json!({"type": "oom", "id": a.id}));
            ooms = now;
        }
        if std::time::Instant::now() >= next_stats {
            println!(
                "{}",
                serde_json::json!({"type": "stats", "id": a.id, "data": rec.cgroup.stats()})
            );
            next_stats += interval;
        }
        std::thread::sleep(tick);
    }
}

fn spec(a: &cli::SpecArgs, rootless: bool) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let text = spec_template::default_spec(
        rootless,
        uid,
        gid,
        runtime::cgroups::mode() == runtime::cgroups::Mode::V2,
    );
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("1.5k").unwrap(), 1536);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("12q").is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_interval("soon").is_err());
    }
}
