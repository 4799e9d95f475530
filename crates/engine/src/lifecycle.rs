//! Container lifecycle operations: start (detached through a monitor, or attached in this
//! process), stop, kill, wait, pause, unpause; and `refresh`, which notices a container whose
//! owner died and puts it in the state it is really in.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::db::{self, Container, State};
use crate::error::{Context, Error, Result};
use crate::logs::{LogWriter, Stream};
use crate::{launch, monitor, owner, remove, rootfs, supervise, Engine};

fn bad_state(ct: &Container, state: &str, what: &str) -> Error {
    Error::BadState {
        name: ct.name.clone(),
        state: state.into(),
        what: what.into(),
    }
}

/// An active container whose owner is gone: stop what is left of it, free its resources, and
/// record that it exited and why.
pub fn refresh(e: &Engine, ct: Container) -> Result<Container> {
    if !ct.state.is_active() {
        return Ok(ct);
    }
    let lock_path = e.paths.owner_lock(&ct.id);
    let Some(_lock) = owner::try_acquire(&lock_path)? else {
        return Ok(ct);
    };
    // Re-read under the lock: the owner may have finished properly meanwhile.
    let Some(now) = db::get(e.db(), &ct.id)? else {
        return Err(Error::NoSuchContainer(ct.name));
    };
    if !now.state.is_active() {
        return Ok(now);
    }
    let why = format!(
        "the container's monitor (pid {}) died; the container was stopped",
        now.monitor_pid
    );
    // Its owner would have removed a --rm container: so do we.
    finish(e, &now, 255, &why, true)?;
    db::get(e.db(), &ct.id)?.ok_or(Error::NoSuchContainer(ct.name))
}

/// The container could not be started: undo the start, record why, remove it with --rm.
pub fn start_failed(e: &Engine, ct: &Container, err: &Error, auto_remove: bool) -> Result<()> {
    let _ = launch::release(e, ct);
    if auto_remove && ct.config.auto_remove {
        return remove::discard(e, ct, true);
    }
    rootfs::unmount(e, &ct.id)?;
    db::set_start_failed(e.db(), &ct.id, err.exit_code(), &err.to_string())
}

/// The container's process is gone: unmount, record the exit, and remove it with --rm.
pub fn finish(e: &Engine, ct: &Container, code: i32, error: &str, auto_remove: bool) -> Result<()> {
    finish_holding(e, ct, code, error, auto_remove, Vec::new())
}

/// As [`finish`], with the namespaces `launch` held for a `--rm` container: they are let go in
/// the background, with its files.
fn finish_holding(
    e: &Engine,
    ct: &Container,
    code: i32,
    error: &str,
    auto_remove: bool,
    namespaces: Vec<std::os::fd::OwnedFd>,
) -> Result<()> {
    if auto_remove && ct.config.auto_remove {
        // Its cgroup directories and runtime state go in the background, with its files.
        let left = launch::release_later(e, ct).unwrap_or_default();
        return remove::discard_leaving(e, ct, true, left.as_ref(), namespaces);
    }
    drop(namespaces);
    let _ = launch::release(e, ct);
    rootfs::unmount(e, &ct.id)?;
    db::set_exited(e.db(), &ct.id, code, crate::time::now_ns(), error)
}

/// `start` without attaching: hand the container to a new monitor.
pub fn start_detached(e: &Engine, ct: &Container) -> Result<()> {
    match ct.state {
        State::Running | State::Restarting => return Ok(()),
        State::Paused => {
            return Err(bad_state(ct, "paused", "unpause it with: lbox unpause NAME"));
        }
        _ => {}
    }
    clear_manual_stop(e, ct)?;
    monitor::spawn(e, ct)
}

/// A start by the user ends an earlier `stop`: the restart policy applies again.
fn clear_manual_stop(e: &Engine, ct: &Container) -> Result<()> {
    if ct.manual_stop {
        db::set_manual_stop(e.db(), &ct.id, false)?;
    }
    Ok(())
}

/// `run` in the foreground / `start -a`: this process looks after the container and returns its
/// exit code. Output goes to our stdout/stderr (and to the log, unless the container is removed
/// at exit anyway); stdin is passed through with -i.
pub fn run_attached(e: &Engine, ct: &Container) -> Result<i32> {
    run_logged(e, ct, true)
}

/// As [`run_attached`]; `echo` false keeps the output in the container's log only (a quiet
/// build step, whose output is shown only if it fails).
pub fn run_logged(e: &Engine, ct: &Container, echo: bool) -> Result<i32> {
    let Some(_lock) = owner::try_acquire(&e.paths.owner_lock(&ct.id))? else {
        return Err(bad_state(ct, "running", "it is already running"));
    };
    clear_manual_stop(e, ct)?;
    // Blocked before the clone, so an early exit of the container cannot be missed.
    runtime::container::forwarded_signals()
        .thread_block()
        .ctx(|| "block signals".into())?;
    let mut held = Vec::new();
    let result = attached(e, ct, echo, &mut held);
    match &result {
        Ok(code) => finish_holding(e, ct, *code, "", true, held)?,
        Err(err) => start_failed(e, ct, err, true)?,
    }
    result
}

/// `held` gets the namespaces `launch` held open (see `launch::Launched::namespaces`).
fn attached(e: &Engine, ct: &Container, echo: bool, held: &mut Vec<std::os::fd::OwnedFd>) -> Result<i32> {
    let c = &ct.config;
    let bundle = launch::prepare(e, ct)?;
    let null = launch::dev_null()?;
    let stdin = if c.open_stdin { None } else { Some(null.as_raw_fd()) };
    if c.tty {
        let mut l = launch::start_recorded(e, ct, bundle, [stdin, None, None])?;
        *held = std::mem::take(&mut l.namespaces);
        let master = l
            .master
            .ok_or_else(|| Error::Invalid("the container sent no terminal".into()))?;
        if c.auto_remove {
            return Ok(runtime::tty::relay(master, l.pid)?);
        }
        // The terminal's output goes to the log too, so `logs` shows a foreground `-t` run.
        let mut log = LogWriter::open(&e.paths.log(&ct.id), c.log_max_size)?;
        let code = runtime::tty::relay_tee(master, l.pid, &mut |b| log.write(Stream::Stdout, b));
        log.flush();
        return Ok(code?);
    }
    if c.auto_remove {
        // Nothing to keep a log for: the container's output goes straight to ours.
        let mut l = launch::start_recorded(e, ct, bundle, [stdin, None, None])?;
        *held = std::mem::take(&mut l.namespaces);
        return supervise::run(
            l.pid,
            supervise::Outputs {
                stdout: None,
                stderr: None,
                master: None,
                echo: false,
            },
            None,
            None,
            None,
        );
    }
    let (out_r, out_w) = launch::pipe()?;
    let (err_r, err_w) = launch::pipe()?;
    let l = launch::start_recorded(e, ct, bundle, [stdin, Some(out_w.as_raw_fd()), Some(err_w.as_raw_fd())])?;
    drop((out_w, err_w));
    let mut log = LogWriter::open(&e.paths.log(&ct.id), c.log_max_size)?;
    supervise::run(
        l.pid,
        supervise::Outputs {
            stdout: Some(out_r),
            stderr: Some(err_r),
            master: None,
            echo,
        },
        Some(&mut log),
        None,
        None,
    )
}

fn signal_init(ct: &Container, sig: Signal) -> Result<()> {
    if ct.pid <= 0 || !runtime::state::pid_alive(ct.pid, ct.pid_start) {
        return Ok(());
    }
    kill(Pid::from_raw(ct.pid), sig).ctx(|| format!("send {sig} to container {}", ct.name))
}

/// Wait until the container is no longer active (its owner recorded the exit), up to `timeout`.
pub fn wait_inactive(e: &Engine, id: &str, timeout: Option<Duration>) -> Result<Option<Container>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut pause = Duration::from_millis(2);
    loop {
        let Some(ct) = db::get(e.db(), id)? else {
            return Ok(None);
        };
        let ct = refresh(e, ct)?;
        if !ct.state.is_active() {
            return Ok(Some(ct));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Some(ct));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// `stop`: the stop signal, then SIGKILL after the timeout (Docker's default 10 s).
pub fn stop(e: &Engine, ct: &Container, timeout: Option<u64>) -> Result<()> {
    if !ct.state.is_active() {
        return Ok(());
    }
    db::set_manual_stop(e.db(), &ct.id, true)?;
    // Read again once the restart policy is off: a monitor restarting the container may have
    // recorded a new process since `ct` was read (it looks at manual_stop after recording it).
    let Some(fresh) = db::get(e.db(), &ct.id)? else {
        return Ok(());
    };
    let ct = &fresh;
    let secs = timeout.or(ct.config.stop_timeout).unwrap_or(10);
    let sig = runtime::container::parse_signal(&ct.config.stop_signal).unwrap_or(Signal::SIGTERM);
    signal_init(ct, sig)?;
    if ct.state == State::Paused {
        let _ = set_paused(e, ct, false);
    }
    let after = wait_inactive(e, &ct.id, Some(Duration::from_secs(secs)))?;
    if after.as_ref().is_some_and(|c| c.state.is_active()) {
        let now = after.as_ref().unwrap_or(ct);
        signal_init(now, Signal::SIGKILL)?;
        let last = wait_inactive(e, &ct.id, Some(Duration::from_secs(30)))?;
        if last.is_some_and(|c| c.state.is_active()) {
            return Err(bad_state(ct, "running", "it did not stop after SIGKILL"));
        }
    }
    Ok(())
}

pub fn kill_container(e: &Engine, ct: &Container, sig: &str) -> Result<()> {
    if !ct.state.is_active() || ct.state == State::Restarting {
        return Err(bad_state(ct, ct.state.as_str(), "it is not running"));
    }
    let s = runtime::container::parse_signal(sig)
        .map_err(|_| Error::Invalid(format!("invalid signal {sig:?}: use a name like SIGTERM or a number")))?;
    if matches!(s, Signal::SIGKILL | Signal::SIGTERM | Signal::SIGINT) {
        db::set_manual_stop(e.db(), &ct.id, true)?;
    }
    signal_init(ct, s)?;
    if ct.state == State::Paused && s == Signal::SIGKILL {
        let _ = set_paused(e, ct, false);
    }
    Ok(())
}

/// Freeze or thaw every process of the container (the cgroup freezer).
pub fn set_paused(e: &Engine, ct: &Container, paused: bool) -> Result<()> {
    let store = e.runtime_store();
    if let Some(rt) = &ct.config.runtime {
        let what = if paused { "pause" } else { "resume" };
        let st = std::process::Command::new(rt)
            .arg("--root")
            .arg(e.paths.run.join("external"))
            .arg(what)
            .arg(&ct.id)
            .status()
            .ctx(|| format!("run {} {what}", rt.display()))?;
        if !st.success() {
            return Err(Error::Invalid(format!("{} {what} {} failed", rt.display(), ct.name)));
        }
    } else if paused {
        runtime::container::pause(&store, &ct.id)?;
    } else {
        runtime::container::resume(&store, &ct.id)?;
    }
    db::set_state(e.db(), &ct.id, if paused { State::Paused } else { State::Running })
}

pub fn pause(e: &Engine, ct: &Container) -> Result<()> {
    match ct.state {
        State::Running => set_paused(e, ct, true),
        State::Paused => Err(bad_state(ct, "paused", "it is already paused")),
        s => Err(bad_state(ct, s.as_str(), "it is not running")),
    }
}

pub fn unpause(e: &Engine, ct: &Container) -> Result<()> {
    match ct.state {
        State::Paused => set_paused(e, ct, false),
        s => Err(bad_state(ct, s.as_str(), "it is not paused")),
    }
}

/// `wait`: block until the container is not running; its exit code.
pub fn wait(e: &Engine, ct: &Container) -> Result<i32> {
    match wait_inactive(e, &ct.id, None)? {
        Some(c) => Ok(c.exit_code),
        // Removed on exit (--rm): the code went with it.
        None => Ok(0),
    }
}
