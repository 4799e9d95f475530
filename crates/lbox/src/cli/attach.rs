//! `attach`: connect our terminal (or stdin/stdout/stderr) to a detached container through its
//! monitor's attach socket. Ctrl-P Ctrl-Q detaches from a terminal, as in Docker.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use engine::attach::{read_frame, write_frame, EXIT, RESIZE, STDERR, STDIN, STDIN_EOF, STDOUT};

use super::containers::open;

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach stdin.
    #[arg(long)]
    pub no_stdin: bool,
    pub container: String,
}

/// Raw mode on our terminal while attached to a container's terminal.
struct Raw(Option<nix::sys::termios::Termios>);

impl Raw {
    fn enter(tty: bool) -> Raw {
        let stdin = std::io::stdin();
        if !tty {
            return Raw(None);
        }
        let Ok(orig) = nix::sys::termios::tcgetattr(stdin.as_fd()) else {
            return Raw(None);
        };
        let mut raw = orig.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        Raw(Some(orig))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin().as_fd(), nix::sys::termios::SetArg::TCSANOW, t);
        }
    }
}

fn winsize() -> Option<[u8; 4]> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // Safety: TIOCGWINSZ fills the struct we pass.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } != 0 {
        return None;
    }
    let mut b = [0u8; 4];
    b[..2].copy_from_slice(&ws.ws_row.to_be_bytes());
    b[2..].copy_from_slice(&ws.ws_col.to_be_bytes());
    Some(b)
}

pub fn attach(root: &Path, a: AttachArgs) -> Result<i32> {
    let e = open(root)?;
    let ct = e.find(&a.container)?;
    if !ct.state.is_active() {
        bail!(
            "you cannot attach to a stopped container; start it first with: lbox start {}",
            ct.name
        );
    }
    let sock = e.paths.attach_socket(&ct.id);
    let conn = UnixStream::connect(&sock);
    if conn.is_err() {
        // Its monitor may be recording an exit this very moment.
        if let Some(now) = engine::lifecycle::wait_inactive(&e, &ct.id, Some(std::time::Duration::from_secs(2)))? {
            if !now.state.is_active() {
                bail!(
                    "you cannot attach to a stopped container; start it first with: lbox start {}",
                    ct.name
                );
            }
        }
    }
    let mut conn = conn.with_context(|| {
        format!(
            "container {} has no monitor to attach to (it runs in the foreground of another lbox command)",
            ct.name
        )
    })?;
    let term = ct.config.tty && nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false);
    let _raw = Raw::enter(term);
    if ct.config.tty {
        if let Some(ws) = winsize() {
            write_frame(&mut conn, RESIZE, &ws)?;
        }
    }
    if !a.no_stdin && (ct.config.open_stdin || ct.config.tty) {
        let mut w = conn.try_clone()?;
        let tty = ct.config.tty;
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut prev_ctrl_p = false;
            loop {
                match std::io::stdin().read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = write_frame(&mut w, STDIN_EOF, &[]);
                        return;
                    }
                    Ok(n) => {
                        if tty {
                            for &b in &buf[..n] {
                                if prev_ctrl_p && b == 0x11 {
                                    // Ctrl-P Ctrl-Q: leave the container running.
                                    let _ = w.shutdown(std::net::Shutdown::Both);
                                    return;
                                }
                                prev_ctrl_p = b == 0x10;
                            }
                        }
                        if write_frame(&mut w, STDIN, &buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        match read_frame(&mut conn) {
            Ok(Some((STDOUT, d))) => {
                let _ = out.write_all(&d);
                let _ = out.flush();
            }
            Ok(Some((STDERR, d))) => {
                let _ = err.write_all(&d);
            }
            Ok(Some((EXIT, d))) if d.len() == 4 => return Ok(i32::from_be_bytes([d[0], d[1], d[2], d[3]])),
            Ok(Some(_)) => {}
            // Detached (Ctrl-P Ctrl-Q) or the monitor went away: report what the container is doing.
            Ok(None) | Err(_) => {
                let now = e.find(&ct.id)?;
                if now.state.is_active() {
                    eprintln!("\r\nread escape sequence");
                    return Ok(0);
                }
                return Ok(now.exit_code);
            }
        }
    }
}
