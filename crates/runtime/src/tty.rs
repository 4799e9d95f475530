//! Foreground `run` with a terminal and no console socket: the runtime receives the container's pty
//! master and relays it to its own stdin/stdout (raw mode when they are a terminal), forwarding
//! signals and window size changes, until the container exits.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Context, Error, Result};

/// Receive the pty master the init sends over the console socket.
pub fn receive_master(sock: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
        .ctx(|| "receive the terminal from the container".into())?;
    for c in msg.cmsgs().ctx(|| "read control message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // Safety: the kernel just gave us this fd.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(Error::Init("the container sent no terminal".into()))
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, libc::winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { get_winsize(from.as_raw_fd(), &mut ws) }.is_ok() {
        let _ = unsafe { set_winsize(to.as_raw_fd(), &ws) };
    }
}

/// Give the container's terminal our terminal's size. Called before the program starts, so its
/// first look at the size is already right.
pub fn inherit_size(master: &OwnedFd) {
    copy_winsize(unsafe { BorrowedFd::borrow_raw(0) }, master.as_fd());
}

/// Puts stdin in raw mode for the relay's lifetime.
struct RawMode(Option<termios::Termios>);

impl RawMode {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(orig) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = orig.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        RawMode(Some(orig))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, t);
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
            Err(_) => return false,
        }
    }
    true
}

/// Relay until the container's init exits; returns its exit code. The forwarded signals must be
/// blocked (they are read from a signalfd here).
pub fn relay(master: OwnedFd, pid: i32) -> Result<i32> {
    relay_tee(master, pid, &mut |_| {})
}

/// As [`relay`], also handing the terminal's output to `tee` (a container log).
pub fn relay_tee(master: OwnedFd, pid: i32, tee: &mut dyn FnMut(&[u8])) -> Result<i32> {
    let sfd = SignalFd::with_flags(&crate::container::forwarded_signals(), SfdFlags::SFD_CLOEXEC)
        .ctx(|| "signalfd".into())?;
    let stdin = unsafe { BorrowedFd::borrow_raw(0) };
    let stdout = unsafe { BorrowedFd::borrow_raw(1) };
    let _raw = RawMode::enter();
    copy_winsize(stdin, master.as_fd());
    let mut stdin_open = true;
    let mut buf = vec![0u8; 32 * 1024];
    let mut exit: Option<i32> = None;
    loop {
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::POLLIN));
        }
        // Once the init is gone, drain what is left of its output, then stop.
        let timeout = if exit.is_some() {
            PollTimeout::ZERO
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => return Ok(exit.unwrap_or(0)),
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => {
                return Err(Error::Sys {
                    what: "poll".into(),
                    errno: e,
                })
            }
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (sig_ready, master_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        if master_ready {
            match nix::unistd::read(master.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    write_all(stdout, &buf[..n]);
                    tee(&buf[..n]);
                }
                // EIO: every slave is closed (the container is gone).
                _ if exit.is_some() => return Ok(exit.unwrap_or(0)),
                _ => {}
            }
        }
        if stdin_ready {
            match nix::unistd::read(stdin, &mut buf) {
                Ok(n) if n > 0 => {
                    write_all(master.as_fd(), &buf[..n]);
                }
                _ => stdin_open = false,
            }
        }
        if sig_ready {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGTERM);
                match sig {
                    Signal::SIGCHLD => loop {
                        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => exit = Some(code),
                            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => exit = Some(128 + s as i32),
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(_) => {}
                        }
                    },
                    Signal::SIGWINCH => copy_winsize(stdin, master.as_fd()),
                    other => {
                        let _ = kill(Pid::from_raw(pid), other);
                    }
                }
            }
        }
    }
}
