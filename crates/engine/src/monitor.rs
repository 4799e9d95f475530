//! The per-container monitor: a small process (this same binary, `lbox __monitor`, double-forked
//! and in its own session) that a detached container gets instead of a daemon. It starts the
//! container, holds its output pipes and writes its log, records its exit, applies the restart
//! policy, runs health checks, and cleans up. It owns the container through the owner lock.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::unistd::{fork, setsid, ForkResult};

use crate::db::{self, Container};
use crate::error::{Context, Error, Result};
use crate::logs::LogWriter;
use crate::{health, launch, lifecycle, owner, supervise, Engine, Paths};

/// The hidden subcommand the monitor runs as.
pub const SUBCOMMAND: &str = "__monitor";

/// Start a monitor for the container and wait until it reports the container started (or why
/// it could not start). Returns the monitor's pid.
pub fn spawn(e: &Engine, ct: &Container) -> Result<()> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).ctx(|| "pipe".into())?;
    let args: Vec<CString> = [
        "lbox-monitor".to_string(),
        SUBCOMMAND.to_string(),
        e.paths.root.to_string_lossy().into_owned(),
        e.paths.run.to_string_lossy().into_owned(),
        ct.id.clone(),
        w.as_raw_fd().to_string(),
    ]
    .into_iter()
    .map(|s| CString::new(s).map_err(|_| Error::Invalid("a path contains a NUL byte".into())))
    .collect::<Result<_>>()?;
    let exe = CString::new("/proc/self/exe").map_err(|_| Error::Invalid("exe".into()))?;
    let devnull = CString::new("/dev/null").map_err(|_| Error::Invalid("null".into()))?;
    // Safety: we are single-threaded; the children only call async-signal-safe functions
    // (setsid, fork, open, dup2, fcntl, execv, _exit) on data prepared before the fork.
    match unsafe { fork() }.ctx(|| "fork the monitor".into())? {
        ForkResult::Child => unsafe {
            let _ = setsid();
            match fork() {
                Ok(ForkResult::Child) => {
                    let null = libc::open(devnull.as_ptr(), libc::O_RDWR);
                    for fd in 0..3 {
                        libc::dup2(null, fd);
                    }
                    libc::fcntl(w.as_raw_fd(), libc::F_SETFD, 0);
                    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
                    argv.push(std::ptr::null());
                    libc::execv(exe.as_ptr(), argv.as_ptr());
                    libc::_exit(127);
                }
                _ => libc::_exit(0),
            }
        },
        ForkResult::Parent { child } => {
            drop(w);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut msg = String::new();
            let _ = std::fs::File::from(r).read_to_string(&mut msg);
            match msg.split_once('\n') {
                Some(("ok", _)) => Ok(()),
                Some((code, text)) if code.starts_with("err ") => Err(Error::Exec {
                    msg: text.trim_end().to_string(),
                    code: code[4..].parse().unwrap_or(125),
                }),
                _ => Err(Error::Invalid(format!(
                    "the monitor of container {} exited without starting it",
                    ct.name
                ))),
            }
        }
    }
}

fn report(status: &mut Option<OwnedFd>, msg: &str) {
    if let Some(fd) = status.take() {
        let _ = rustix::io::write(&fd, msg.as_bytes());
    }
}

/// The monitor process: `lbox __monitor ROOT RUN ID STATUS-FD`.
pub fn main(args: &[String]) -> i32 {
    let [root, run, id, fd] = args else { return 125 };
    let Ok(fd) = fd.parse::<RawFd>() else { return 125 };
    // Safety: the status pipe's write end, passed to us by spawn().
    let mut status = Some(unsafe { OwnedFd::from_raw_fd(fd) });
    let _ = rustix::io::fcntl_setfd(status.as_ref().expect("just set"), rustix::io::FdFlags::CLOEXEC);
    match monitor(Paths::new(root, run), id, &mut status) {
        Ok(()) => 0,
        Err(err) => {
            report(&mut status, &format!("err {}\n{err}\n", err.exit_code()));
            1
        }
    }
}

fn monitor(paths: Paths, id: &str, status: &mut Option<OwnedFd>) -> Result<()> {
    let e = Engine::open(paths)?;
    let Some(_lock) = owner::try_acquire(&e.paths.owner_lock(id))? else {
        return Err(Error::Invalid(format!("container {id} is already running")));
    };
    runtime::container::forwarded_signals()
        .thread_block()
        .ctx(|| "block signals".into())?;
    let mut log = LogWriter::open(&e.paths.log(id), None)?;
    let mut backoff = Duration::from_millis(100);
    loop {
        let ct = db::get(e.db(), id)?.ok_or_else(|| Error::NoSuchContainer(id.into()))?;
        let started_at = Instant::now();
        let (code, mut attach) = match start_and_supervise(&e, &ct, &mut log, status) {
            Ok(done) => done,
            Err(err) if status.is_some() => {
                lifecycle::start_failed(&e, &ct, &err, false)?;
                return Err(err);
            }
            Err(err) => {
                // A restart that failed: record why and stop trying.
                lifecycle::finish(&e, &ct, err.exit_code(), &err.to_string(), true)?;
                return Ok(());
            }
        };
        // Free the cgroup and runtime state now: a restart makes them again.
        let _ = launch::release(&e, &ct);
        let now = db::get(e.db(), id)?.ok_or_else(|| Error::NoSuchContainer(id.into()))?;
        if now.config.restart.should_restart(code, now.manual_stop, now.restarts) {
            // Docker's back-off: doubling from 100 ms, reset after 10 s of good running.
            if started_at.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            db::set_exited(e.db(), id, code, crate::time::now_ns(), "")?;
            db::add_restart(e.db(), id)?;
            attach.exited(code);
            drop(attach);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(60));
            if db::get(e.db(), id)?.is_some_and(|c| c.manual_stop) {
                lifecycle::finish(&e, &now, code, "", true)?;
                return Ok(());
            }
            continue;
        }
        // Recorded before attached clients hear of the exit: when `attach` returns, the
        // container is seen stopped.
        lifecycle::finish(&e, &now, code, "", true)?;
        attach.exited(code);
        return Ok(());
    }
}

fn start_and_supervise(
    e: &Engine,
    ct: &Container,
    log: &mut LogWriter,
    status: &mut Option<OwnedFd>,
) -> Result<(i32, crate::attach::AttachServer)> {
    let bundle = launch::prepare(e, ct)?;
    let null = launch::dev_null()?;
    let (out_r, out_w) = launch::pipe()?;
    let (err_r, err_w) = launch::pipe()?;
    // With -i the container's stdin stays open: the monitor holds the write end for attach.
    let (in_r, in_w) = if ct.config.open_stdin {
        let (r, w) = launch::pipe()?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let stdin_fd = in_r.as_ref().map_or(null.as_raw_fd(), |r| r.as_raw_fd());
    let fds = if ct.config.tty {
        [Some(stdin_fd), Some(null.as_raw_fd()), Some(null.as_raw_fd())]
    } else {
        [Some(stdin_fd), Some(out_w.as_raw_fd()), Some(err_w.as_raw_fd())]
    };
    let launched = launch::with_stdio(fds, || launch::launch(e, ct, bundle))??;
    drop((out_w, err_w, in_r));
    // Attach input goes to the terminal, or to the stdin pipe kept open with -i. Bound before
    // the container is reported started, so an `attach` right after `run -d` finds it.
    let input = match &launched.master {
        Some(m) => Some(m.try_clone().ctx(|| "dup the terminal".into())?),
        None => in_w,
    };
    let mut attach = crate::attach::AttachServer::bind(&e.paths.attach_socket(&ct.id), input, ct.config.tty)?;
    db::set_running(
        e.db(),
        ct,
        launched.pid,
        launched.pid_start,
        std::process::id() as i32,
        crate::time::now_ns(),
    )?;
    // A `stop` that came while this was a restart under way signalled the old process: it
    // turned the restart policy off first, so look now that the new process is recorded.
    // (`status` is there only on the first start, which a stop cannot have raced.)
    if status.is_none() && db::get(e.db(), &ct.id)?.is_some_and(|c| c.manual_stop) {
        let sig = runtime::container::parse_signal(&ct.config.stop_signal).unwrap_or(nix::sys::signal::Signal::SIGTERM);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(launched.pid), sig);
    }
    report(status, "ok\n");
    crate::trim::trim();
    let mut checker = health::Checker::new(e, ct);
    let outputs = supervise::Outputs {
        stdout: Some(out_r),
        stderr: Some(err_r),
        master: launched.master,
        echo: false,
    };
    let ticker: Option<&mut dyn supervise::Ticker> = checker.as_mut().map(|c| c as &mut dyn supervise::Ticker);
    let code = supervise::run(launched.pid, outputs, Some(log), ticker, Some(&mut attach))?;
    Ok((code, attach))
}
