//! `--runtime PATH`: drive any runc-compatible runtime (runc itself, or lbox-runc) through the
//! runc command line instead of the built-in runtime. The container's init is the runtime's
//! child and is orphaned when `create` returns, so the caller is a child subreaper and reaps it.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::db::Container;
use crate::error::{Context, Error, Result};
use crate::launch::Launched;
use crate::Engine;

fn state_root(e: &Engine) -> PathBuf {
    e.paths.run.join("external")
}

/// The last line of a runtime's error output, with Docker's exit code for it.
fn failure(rt: &Path, what: &str, output: &str) -> Error {
    let line = output.trim().lines().last().unwrap_or("").to_string();
    Error::Exec {
        code: crate::launch::exec_failure_code(&line),
        msg: format!("{} {what}: {line}", rt.display()),
    }
}

fn delete_state(rt: &Path, root: &Path, id: &str, log: &Path) -> Result<()> {
    run(
        rt,
        &[
            "--root".as_ref(),
            root.as_os_str(),
            "delete".as_ref(),
            "--force".as_ref(),
            id.as_ref(),
        ],
        "delete",
        log,
    )
}

fn run(rt: &Path, args: &[&std::ffi::OsStr], what: &str, log: &Path) -> Result<()> {
    let out = Command::new(rt)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .ctx(|| format!("run {} {what}", rt.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if msg.is_empty() {
        msg = std::fs::read_to_string(log).unwrap_or_default().trim().to_string();
    }
    Err(failure(rt, what, &msg))
}

pub fn launch(e: &Engine, ct: &Container, rt: &Path, bundle: &Path) -> Result<Launched> {
    // Safety: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let root = state_root(e);
    std::fs::create_dir_all(&root).ctx(|| format!("create {}", root.display()))?;
    let pid_file = bundle.join("external.pid");
    let log = bundle.join("external-runtime.log");
    let _ = delete_state(rt, &root, &ct.id, &log);
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--root".as_ref(),
        root.as_os_str(),
        "--log".as_ref(),
        log.as_os_str(),
        "create".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        "--pid-file".as_ref(),
        pid_file.as_os_str(),
    ];
    let sock_path = bundle.join("console.sock");
    let listener = if ct.config.tty {
        let _ = std::fs::remove_file(&sock_path);
        Some(UnixListener::bind(&sock_path).ctx(|| format!("bind {}", sock_path.display()))?)
    } else {
        None
    };
    if listener.is_some() {
        args.push("--console-socket".as_ref());
        args.push(sock_path.as_os_str());
    }
    args.push(ct.id.as_ref());
    // The runtime hands our stdin/stdout/stderr to the container (non-terminal case), so its
    // own error output is captured only through a pipe of the caller's choosing: the log file.
    let created = Command::new(rt)
        .args(&args)
        .status()
        .ctx(|| format!("run {} create", rt.display()))?;
    if !created.success() {
        let msg = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(failure(rt, "create", &msg));
    }
    let master = match listener {
        Some(l) => {
            let (s, _) = l.accept().ctx(|| "accept the console socket".into())?;
            let _ = std::fs::remove_file(&sock_path);
            Some(runtime::tty::receive_master(&s)?)
        }
        None => None,
    };
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ctx(|| format!("read {}", pid_file.display()))?
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("{}: not a pid", pid_file.display())))?;
    let ports = match crate::netconnect::attach(e, ct, std::path::Path::new(&format!("/proc/{pid}/ns/net"))) {
        Ok(p) => p,
        Err(err) => {
            let _ = delete_state(rt, &root, &ct.id, &log);
            return Err(err);
        }
    };
    if let Err(err) = run(
        rt,
        &["--root".as_ref(), root.as_os_str(), "start".as_ref(), ct.id.as_ref()],
        "start",
        &log,
    ) {
        let _ = crate::netconnect::detach(e, ct);
        return Err(err);
    }
    Ok(Launched {
        pid,
        pid_start: runtime::state::proc_stat(pid).map_or(0, |(_, s)| s),
        master,
        ports,
        namespaces: Vec::new(),
    })
}

pub fn delete(e: &Engine, ct: &Container, rt: &Path) -> Result<()> {
    let root = state_root(e);
    let log = e.paths.container(&ct.id).join("external-runtime.log");
    delete_state(rt, &root, &ct.id, &log)
}
