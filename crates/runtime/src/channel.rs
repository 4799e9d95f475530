//! The typed channel between the runtime and the container's init while it is being set up.
//!
//! One `SOCK_SEQPACKET` socketpair: each message is one datagram, so there is no framing to get
//! wrong, and a peer that dies shows up as end-of-file instead of a hang.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// Messages from the runtime to the init.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ToInit {
    /// Id maps written (when the init was cloned into a new user namespace): go on with the setup.
    Go,
    /// createRuntime/prestart hooks ran: pivot into the rootfs.
    HooksDone,
    /// `run` (no fifo): exec the process now.
    Start,
    /// The user namespace's id maps are written.
    MapsDone,
    /// The init's cgroup exists and has its limits; the runtime added the init when it does
    /// that itself (otherwise the init joins on its own).
    CgroupReady,
}

/// Messages from the init to the runtime.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum FromInit {
    /// A user namespace was unshared: write its id maps.
    NeedMaps,
    /// Namespaces made and mounts done; the runtime may run its hooks now.
    RunHooks,
    /// Fully set up and waiting for `start`.
    Ready,
    /// Setup failed; the text is the error to show.
    Failed(String),
}

pub struct End(OwnedFd);

/// Look at the next message without taking it, and learn its whole length (a datagram socket's
/// MSG_TRUNC reports the length even when the buffer is shorter).
const PEEK_LEN: rustix::net::RecvFlags = rustix::net::RecvFlags::PEEK.union(rustix::net::RecvFlags::TRUNC);

pub fn pair() -> Result<(End, End)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .ctx(|| "create the runtime/init socket pair".into())?;
    Ok((End(a), End(b)))
}

impl End {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| Error::Init(format!("encode message: {e}")))?;
        rustix::net::send(self.0.as_fd(), &data, rustix::net::SendFlags::NOSIGNAL)
            .ctx(|| "send to the container init".into())?;
        Ok(())
    }

    /// Receive one message; `None` when the peer has closed its end (exited or exec'd).
    pub fn recv<T: for<'de> Deserialize<'de>>(&self) -> Result<Option<T>> {
        let mut resets = 0;
        // A peer that exits with our messages unread leaves ECONNRESET pending. The kernel
        // reports it once, ahead of what the peer did send (its last words), and it may arrive
        // between the peek and the read below: read on in either case.
        let (buf, n) = loop {
            // Peek at the message's length first: messages are small, and a 64 KiB buffer for
            // each one cost the start path ~15 page faults a message, in the runtime and in the
            // init.
            let len = match rustix::net::recv(self.0.as_fd(), &mut [0u8; 1], PEEK_LEN) {
                Ok((_, len)) => len,
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CONNRESET) if resets < 2 => {
                    resets += 1;
                    continue;
                }
                Err(e) => return Err(e).ctx(|| "receive from the container init".into()),
            };
            if len == 0 {
                return Ok(None);
            }
            let mut buf = vec![0u8; len];
            match rustix::net::recv(self.0.as_fd(), &mut buf, rustix::net::RecvFlags::empty()) {
                Ok((n, _)) => break (buf, n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::CONNRESET) if resets < 2 => resets += 1,
                Err(e) => return Err(e).ctx(|| "receive from the container init".into()),
            }
        };
        serde_json::from_slice(&buf[..n])
            .map(Some)
            .map_err(|e| Error::Init(format!("bad message: {e}")))
    }

    /// A message already waiting, if any (never blocks).
    pub fn try_recv<T: for<'de> Deserialize<'de>>(&self) -> Option<T> {
        let flags = PEEK_LEN | rustix::net::RecvFlags::DONTWAIT;
        let (_, len) = rustix::net::recv(self.0.as_fd(), &mut [0u8; 1], flags).ok()?;
        let mut buf = vec![0u8; len];
        let (n, _) = rustix::net::recv(self.0.as_fd(), &mut buf, rustix::net::RecvFlags::DONTWAIT).ok()?;
        serde_json::from_slice(&buf[..n]).ok()
    }

    pub fn raw(&self) -> i32 {
        self.0.as_raw_fd()
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_words_survive_a_reset() {
        // The peer exits without reading what we sent: its message must still arrive.
        let (a, b) = pair().unwrap();
        b.send(&ToInit::Go).unwrap();
        a.send(&FromInit::Failed("why".into())).unwrap();
        drop(a);
        assert_eq!(b.recv::<FromInit>().unwrap(), Some(FromInit::Failed("why".into())));
        assert_eq!(b.recv::<FromInit>().unwrap(), None);
    }

    #[test]
    fn a_long_message_arrives_whole() {
        let (a, b) = pair().unwrap();
        let text = "x".repeat(100_000);
        a.send(&FromInit::Failed(text.clone())).unwrap();
        assert_eq!(b.try_recv::<FromInit>(), Some(FromInit::Failed(text)));
        a.send(&FromInit::Ready).unwrap();
        assert_eq!(b.recv::<FromInit>().unwrap(), Some(FromInit::Ready));
    }

    #[test]
    fn roundtrip_and_eof() {
        let (a, b) = pair().unwrap();
        a.send(&FromInit::Failed("boom".into())).unwrap();
        a.send(&FromInit::Ready).unwrap();
        assert_eq!(b.recv::<FromInit>().unwrap(), Some(FromInit::Failed("boom".into())));
        assert_eq!(b.recv::<FromInit>().unwrap(), Some(FromInit::Ready));
        drop(a);
        assert_eq!(b.recv::<FromInit>().unwrap(), None);
    }
}
