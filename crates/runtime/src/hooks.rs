//! OCI hooks: each runs with the container's state on stdin, its own args and env, and an optional
//! timeout after which it is killed.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        })
    }
}

pub fn run_all(kind: Kind, hooks: &[Hook], state_json: &[u8]) -> Result<()> {
    for h in hooks {
        run(kind, h, state_json)?;
    }
    Ok(())
}

fn run(kind: Kind, h: &Hook, state: &[u8]) -> Result<()> {
    let path = h.path().display().to_string();
    let err = |msg: String| Error::Hook {
        kind: kind.to_string(),
        path: path.clone(),
        msg,
    };
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1));
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| err(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    let timeout = h.timeout().filter(|t| *t > 0).map(|t| Duration::from_secs(t as u64));
    let status = match timeout {
        None => child.wait().map_err(|e| err(format!("wait: {e}")))?,
        Some(t) => {
            let pidfd = rustix::process::pidfd_open(
                rustix::process::Pid::from_child(&child),
                rustix::process::PidfdFlags::empty(),
            )
            .map_err(|e| err(format!("pidfd_open: {e}")))?;
            let mut fds = [rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN)];
            let ts = rustix::time::Timespec {
                tv_sec: t.as_secs() as i64,
                tv_nsec: 0,
            };
            let ready = loop {
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Ok(n) => break n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(err(format!("poll: {e}"))),
                }
            };
            if ready == 0 {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!("timed out after {}s and was killed", t.as_secs())));
            }
            child.wait().map_err(|e| err(format!("wait: {e}")))?
        }
    };
    if !status.success() {
        return Err(err(format!("failed with {status}")));
    }
    Ok(())
}
