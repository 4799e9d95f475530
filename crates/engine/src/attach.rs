//! `attach`: the monitor serves its container's streams on a unix socket. Everything on it is a
//! frame, [kind u8][length u32, big endian][payload]: the monitor sends output (1 stdout,
//! 2 stderr) and, when the container exits, its code (4); a client sends input (0), a terminal
//! size (3: rows u16, cols u16) and end of input (5).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Context, Result};
use crate::logs::Stream;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const RESIZE: u8 = 3;
pub const EXIT: u8 = 4;
pub const STDIN_EOF: u8 = 5;

pub fn write_frame(w: &mut impl Write, kind: u8, data: &[u8]) -> std::io::Result<()> {
    let mut head = [0u8; 5];
    head[0] = kind;
    head[1..].copy_from_slice(&(data.len() as u32).to_be_bytes());
    w.write_all(&head)?;
    w.write_all(data)
}

/// One frame; None at end of stream. Frames over 1 MiB are refused (a confused peer).
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > 1 << 20 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "attach frame too large",
        ));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((head[0], data)))
}

pub struct AttachServer {
    path: PathBuf,
    listener: UnixListener,
    clients: Vec<UnixStream>,
    /// Where client input goes: the container's stdin pipe, or its terminal.
    input: Option<OwnedFd>,
    tty: bool,
}

impl AttachServer {
    pub fn bind(path: &Path, input: Option<OwnedFd>, tty: bool) -> Result<AttachServer> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).ctx(|| format!("bind {}", path.display()))?;
        listener.set_nonblocking(true).ctx(|| "attach socket".into())?;
        Ok(AttachServer {
            path: path.to_path_buf(),
            listener,
            clients: Vec::new(),
            input,
            tty,
        })
    }

    /// The fds to poll: the listener first, then each client.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v = vec![self.listener.as_fd()];
        v.extend(self.clients.iter().map(|c| c.as_fd()));
        v
    }

    /// Handle what poll reported for `fds()` (same order).
    pub fn ready(&mut self, ready: &[bool]) {
        if ready.first() == Some(&true) {
            while let Ok((c, _)) = self.listener.accept() {
                // A client that stops reading must not stall the container: writes time out.
                let _ = c.set_nonblocking(false);
                let _ = c.set_write_timeout(Some(Duration::from_secs(2)));
                self.clients.push(c);
            }
        }
        let mut gone = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            if !ready.get(i + 1).copied().unwrap_or(false) {
                continue;
            }
            match read_frame(c) {
                Ok(Some((STDIN, data))) => {
                    if let Some(fd) = &self.input {
                        let _ = rustix::io::write(fd, &data);
                    }
                }
                Ok(Some((RESIZE, data))) if data.len() == 4 && self.tty => {
                    if let Some(fd) = &self.input {
                        let ws = libc::winsize {
                            ws_row: u16::from_be_bytes([data[0], data[1]]),
                            ws_col: u16::from_be_bytes([data[2], data[3]]),
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        // Safety: TIOCSWINSZ on the terminal's master with a valid winsize.
                        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
                    }
                }
                Ok(Some((STDIN_EOF, _))) if !self.tty => self.input = None,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => gone.push(i),
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
    }

    pub fn output(&mut self, stream: Stream, data: &[u8]) {
        let kind = if stream == Stream::Stderr { STDERR } else { STDOUT };
        self.clients.retain_mut(|c| write_frame(c, kind, data).is_ok());
    }

    pub fn exited(&mut self, code: i32) {
        for c in &mut self.clients {
            let _ = write_frame(c, EXIT, &code.to_be_bytes());
        }
        self.clients.clear();
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
