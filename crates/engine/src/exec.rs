//! `exec`: another process in a running container, through the runtime in-process (joining the
//! container's namespaces and cgroup, with its capabilities, seccomp filter and user), or through
//! the container's external runtime's `exec`.

use std::os::unix::net::UnixListener;
use std::path::Path;

use crate::db::{Container, State};
use crate::error::{Context, Error, Result};
use crate::{inroot, Engine};

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

fn not_running(ct: &Container) -> Error {
    Error::BadState {
        name: ct.name.clone(),
        state: ct.state.as_str().into(),
        what: format!(
            "cannot exec in a container that is not running; start it first with: lbox start {}",
            ct.name
        ),
    }
}

/// Run the process; its exit code (0 at once with `detach`).
pub fn exec(e: &Engine, ct: &Container, r: &ExecRequest) -> Result<i32> {
    match ct.state {
        State::Running => {}
        State::Paused => {
            return Err(Error::BadState {
                name: ct.name.clone(),
                state: "paused".into(),
                what: format!("unpause it first with: lbox unpause {}", ct.name),
            })
        }
        _ => return Err(not_running(ct)),
    }
    if r.args.is_empty() {
        return Err(Error::Invalid("exec needs a command to run".into()));
    }
    let mut env = Vec::new();
    for kv in &r.env {
        env.extend(crate::parse::env_var(kv));
    }
    if let Some(rt) = &ct.config.runtime {
        return external(e, ct, rt, r, &env);
    }
    let bundle = runtime::spec::Bundle::load(&e.paths.container(&ct.id))?;
    let base = bundle.process()?.clone();
    let mut p = runtime::exec::process_from_args(
        Some(&base),
        &runtime::exec::ExecArgs {
            args: r.args.clone(),
            env,
            cwd: r.workdir.as_ref().map(Into::into),
            user: None,
            additional_gids: Vec::new(),
            tty: r.tty,
            caps: Vec::new(),
            no_new_privs: false,
        },
    )?;
    if let Some(u) = &r.user {
        let root = inroot::open_root(&e.paths.rootfs(&ct.id))?;
        let user = crate::spec::user::resolve(&root, u)?;
        let pu = p.user_mut();
        pu.set_uid(user.uid);
        pu.set_gid(user.gid);
        pu.set_additional_gids(if user.additional_gids.is_empty() {
            None
        } else {
            Some(user.additional_gids)
        });
        if user.uid != 0 {
            if let Some(c) = p.capabilities().clone() {
                let mut c = c;
                c.set_effective(Some(Default::default()));
                c.set_permitted(Some(Default::default()));
                p.set_capabilities(Some(c));
            }
        }
    }
    if r.privileged {
        let all: oci_spec::runtime::Capabilities = crate::spec::defaults::effective_capabilities(true, &[], &[])
            .map_err(Error::Invalid)?
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        let mut c = p.capabilities().clone().unwrap_or_default();
        c.set_bounding(Some(all.clone()));
        c.set_effective(Some(all.clone()));
        c.set_permitted(Some(all));
        p.set_capabilities(Some(c));
    }
    let store = e.runtime_store();
    if !r.tty {
        return with_null_stdin(!r.interactive || r.detach, || {
            runtime::exec::exec(
                &store,
                &runtime::exec::ExecOpts {
                    id: ct.id.clone(),
                    process: p.clone(),
                    pid_file: None,
                    console_socket: None,
                    pidfd_socket: None,
                    detach: r.detach,
                    preserve_fds: 0,
                    ignore_paused: false,
                },
            )
        })?
        .map_err(crate::launch::classify);
    }
    // A terminal: the runtime sends the pty master over a console socket of ours; we relay it.
    let sock = e
        .paths
        .container(&ct.id)
        .join(format!("exec-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).ctx(|| format!("bind {}", sock.display()))?;
    let pid_file = e
        .paths
        .container(&ct.id)
        .join(format!("exec-{}.pid", std::process::id()));
    runtime::container::forwarded_signals()
        .thread_block()
        .ctx(|| "block signals".into())?;
    let started = runtime::exec::exec(
        &store,
        &runtime::exec::ExecOpts {
            id: ct.id.clone(),
            process: p,
            pid_file: Some(pid_file.clone()),
            console_socket: Some(sock.clone()),
            pidfd_socket: None,
            detach: true,
            preserve_fds: 0,
            ignore_paused: false,
        },
    );
    let _ = std::fs::remove_file(&sock);
    started.map_err(crate::launch::classify)?;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ctx(|| format!("read {}", pid_file.display()))?
        .trim()
        .parse()
        .map_err(|_| Error::Invalid("exec: bad pid file".into()))?;
    let _ = std::fs::remove_file(&pid_file);
    let (conn, _) = listener.accept().ctx(|| "accept the exec terminal".into())?;
    let master = runtime::tty::receive_master(&conn)?;
    if r.detach {
        return Ok(0);
    }
    Ok(runtime::tty::relay(master, pid)?)
}

/// Without -i the process gets /dev/null as stdin, as Docker's.
fn with_null_stdin<T>(null: bool, f: impl FnOnce() -> T) -> Result<T> {
    if !null {
        return Ok(f());
    }
    let n = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "open /dev/null".into())?;
    crate::launch::with_stdio([Some(std::os::fd::AsRawFd::as_raw_fd(&n)), None, None], f)
}

fn external(e: &Engine, ct: &Container, rt: &Path, r: &ExecRequest, env: &[String]) -> Result<i32> {
    let mut c = std::process::Command::new(rt);
    c.arg("--root").arg(e.paths.run.join("external")).arg("exec");
    if r.tty {
        c.arg("--tty");
    }
    if r.detach {
        c.arg("--detach");
    }
    for kv in env {
        c.arg("--env").arg(kv);
    }
    if let Some(w) = &r.workdir {
        c.arg("--cwd").arg(w);
    }
    if let Some(u) = &r.user {
        let root = inroot::open_root(&e.paths.rootfs(&ct.id))?;
        let user = crate::spec::user::resolve(&root, u)?;
        c.arg("--user").arg(format!("{}:{}", user.uid, user.gid));
    }
    c.arg(&ct.id).args(&r.args);
    if !r.interactive {
        c.stdin(std::process::Stdio::null());
    }
    let st = c.status().ctx(|| format!("run {} exec", rt.display()))?;
    Ok(st.code().unwrap_or(255))
}

/// The container's processes (host pids), for `top`.
pub fn pids(e: &Engine, ct: &Container) -> Result<Vec<i32>> {
    if !ct.state.is_active() {
        return Err(Error::BadState {
            name: ct.name.clone(),
            state: ct.state.as_str().into(),
            what: "it is not running".into(),
        });
    }
    match e.runtime_store().load(&ct.id) {
        Ok(rec) => Ok(rec.cgroup.pids()),
        // An external runtime keeps its own state: the init and its descendants.
        Err(_) => Ok(vec![ct.pid]),
    }
}

/// Bytes received and sent by the container's network interfaces (loopback left out), read in
/// its network namespace through its init's /proc/PID/net/dev. None when it has no network of
/// its own (host networking, as Docker reports) or is not running.
pub fn net_io(ct: &Container) -> Option<(u64, u64)> {
    if !ct.state.is_active() || ct.pid <= 0 || ct.config.network == "host" {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{}/net/dev", ct.pid)).ok()?;
    Some(parse_net_dev(&text))
}

/// `/proc/net/dev`: two header lines, then "name: rx_bytes rx_packets … (8 fields) tx_bytes …".
fn parse_net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let Some((name, fields)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = fields.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        if f.len() >= 16 {
            rx = rx.saturating_add(f[0]);
            tx = tx.saturating_add(f[8]);
        }
    }
    (rx, tx)
}

/// Resource usage, for `stats`.
pub fn stats(e: &Engine, ct: &Container) -> Result<Option<runtime::cgroups::stats::Stats>> {
    if !ct.state.is_active() {
        return Ok(None);
    }
    Ok(e.runtime_store().load(&ct.id).ok().map(|rec| rec.cgroup.stats()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn net_dev_totals_leave_loopback_out() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0:    2048      20    0    0    0     0          0         0      512       5    0    0    0     0       0          0
  eth1:       2       1    0    0    0     0          0         0        3       1    0    0    0     0       0          0
";
        assert_eq!(super::parse_net_dev(text), (2050, 515));
        assert_eq!(super::parse_net_dev(""), (0, 0));
    }
}
