//! Terminals: the container's pty is made inside its own devpts, and the master is handed to whoever
//! listens on `--console-socket` (conmon, containerd's shim) with SCM_RIGHTS.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use oci_spec::runtime::Process;

use crate::error::{Context, Error, Result};

nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, libc::winsize);

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub slave_path: String,
}

/// Open a new pty pair in the devpts mounted at /dev/pts (call after the root switch).
pub fn open(p: &Process) -> Result<Pty> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).ctx(|| "open /dev/ptmx".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let slave_path = nix::pty::ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave_fd = nix::fcntl::open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {slave_path}"))?;
    if let Some(b) = p.console_size() {
        let ws = libc::winsize {
            ws_row: b.height() as u16,
            ws_col: b.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        unsafe { set_winsize(slave_fd.as_raw_fd(), &ws) }.ctx(|| "set terminal size".into())?;
    }
    // Safety: we own the master fd returned by posix_openpt.
    let master =
        unsafe { OwnedFd::from_raw_fd(nix::unistd::dup(&master).ctx(|| "dup pty".into())?.into_raw_fd_compat()) };
    Ok(Pty {
        master,
        slave: slave_fd,
        slave_path,
    })
}

trait IntoRaw {
    fn into_raw_fd_compat(self) -> RawFd;
}
impl IntoRaw for OwnedFd {
    fn into_raw_fd_compat(self) -> RawFd {
        std::os::fd::IntoRawFd::into_raw_fd(self)
    }
}

/// Send the master over the console socket: one message, one fd, the name as payload (as runc).
pub fn send_master(socket: RawFd, master: &OwnedFd) -> Result<()> {
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(b"/dev/ptmx")];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket, &iov, &cmsg, MsgFlags::empty(), None)
        .ctx(|| "send the pty master to the console socket".into())?;
    Ok(())
}

/// Make the slave our controlling terminal and our stdio.
pub fn become_controlled(slave: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(Error::Init(format!(
            "make the pty the controlling terminal: {}",
            std::io::Error::last_os_error()
        )));
    }
    for target in 0..3 {
        let mut t = unsafe { OwnedFd::from_raw_fd(target) };
        let r = nix::unistd::dup2(unsafe { BorrowedFd::borrow_raw(slave.as_raw_fd()) }, &mut t);
        std::mem::forget(t);
        r.ctx(|| format!("dup the pty onto fd {target}"))?;
    }
    Ok(())
}
