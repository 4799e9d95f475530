//! The loop that looks after a running container process: copies its output to the log (and, in
//! the foreground, to our own stdout/stderr), forwards signals to it, and returns its exit code
//! once it has exited and its output is drained. Used by the monitor and by foreground `run`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Context, Result};
use crate::logs::{LogWriter, Stream};

pub struct Outputs {
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The pty master: the terminal's output is the container's stdout.
    pub master: Option<OwnedFd>,
    /// Also copy output to our own stdout/stderr (foreground).
    pub echo: bool,
}

/// Something to do every so often while the container runs (health checks).
pub trait Ticker {
    /// When the next tick is due, if any.
    fn next(&self) -> Option<Instant>;
    fn tick(&mut self, pid: i32);
}

pub fn signal_fd() -> Result<SignalFd> {
    SignalFd::with_flags(
        &runtime::container::forwarded_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .ctx(|| "signalfd".into())
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Reap every exited child (we may be a subreaper); the exit code of `pid` once it is among them.
fn reap(pid: i32) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(st) => {
                if st.pid().map(Pid::as_raw) == Some(pid) {
                    code = crate::launch::exit_code(st);
                }
            }
        }
    }
}

pub fn run(
    pid: i32,
    out: Outputs,
    mut log: Option<&mut LogWriter>,
    mut ticker: Option<&mut dyn Ticker>,
    mut attach: Option<&mut crate::attach::AttachServer>,
) -> Result<i32> {
    let sfd = signal_fd()?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut exit: Option<i32> = reap(pid);
    let mut streams: Vec<(OwnedFd, Stream)> = Vec::new();
    if let Some(f) = out.stdout {
        streams.push((f, Stream::Stdout));
    }
    if let Some(f) = out.stderr {
        streams.push((f, Stream::Stderr));
    }
    if let Some(f) = out.master {
        streams.push((f, Stream::Stdout));
    }
    let mut drain_deadline: Option<Instant> = None;
    loop {
        if exit.is_some() {
            // Output after the init's exit comes only from processes that escaped the pid
            // namespace's teardown (none normally): give them a moment, not forever.
            let d = *drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_millis(500));
            if streams.is_empty() || Instant::now() >= d {
                break;
            }
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        for (f, _) in &streams {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        let attach_fds = attach.as_deref().map(|a| a.fds()).unwrap_or_default();
        for f in &attach_fds {
            fds.push(PollFd::new(*f, PollFlags::POLLIN));
        }
        let timeout = match (exit.is_some(), ticker.as_ref().and_then(|t| t.next())) {
            (true, _) => PollTimeout::from(50u16),
            (false, Some(at)) => {
                let ms = at.saturating_duration_since(Instant::now()).as_millis().min(60_000) as u16;
                PollTimeout::from(ms)
            }
            (false, None) => PollTimeout::NONE,
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx(|| "poll the container's output".into()),
        }
        let revents: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        drop(attach_fds);
        if let Some(a) = attach.as_deref_mut() {
            a.ready(&revents[1 + streams.len()..]);
        }
        if revents[0] {
            while let Ok(Some(si)) = sfd.read_signal() {
                let sig = si.ssi_signo as i32;
                if sig == libc::SIGCHLD {
                    if let Some(c) = reap(pid) {
                        exit = Some(c);
                    }
                } else if exit.is_none() {
                    if let Ok(s) = Signal::try_from(sig) {
                        let _ = kill(Pid::from_raw(pid), s);
                    }
                }
            }
        }
        let mut closed = Vec::new();
        for (i, (f, stream)) in streams.iter().enumerate() {
            if !revents[i + 1] {
                continue;
            }
            match nix::unistd::read(f.as_fd(), &mut buf) {
                Ok(0) | Err(nix::Error::EIO) => closed.push(i),
                Ok(n) => {
                    if let Some(l) = log.as_deref_mut() {
                        l.write(*stream, &buf[..n]);
                    }
                    if let Some(a) = attach.as_deref_mut() {
                        a.output(*stream, &buf[..n]);
                    }
                    if out.echo {
                        let fd = if *stream == Stream::Stdout { 1 } else { 2 };
                        // Safety: our own standard streams.
                        write_all(unsafe { BorrowedFd::borrow_raw(fd) }, &buf[..n]);
                    }
                }
                Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            streams.remove(i);
        }
        if exit.is_none() {
            if let Some(t) = ticker.as_deref_mut() {
                if t.next().is_some_and(|at| at <= Instant::now()) {
                    t.tick(pid);
                }
            }
            if exit.is_none() {
                exit = reap(pid);
            }
        }
    }
    if let Some(l) = log {
        l.flush();
    }
    Ok(exit.unwrap_or(255))
}
