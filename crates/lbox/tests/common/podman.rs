//! A private podman for the interoperability tests: its own store, run directory and
//! containers.conf below a test directory, so the host's images and containers are untouched.
//! Containers get no network (podman's own bridge would add rules to the host's firewall) and a
//! cgroup parent of the test's own, removed on drop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// podman instances share their lock memory (/dev/shm/libpod_lock) whatever their --root: two at
/// once trip over each other's locks. The podman tests of one test binary take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub struct Podman {
    _turn: std::sync::MutexGuard<'static, ()>,
    pub dir: PathBuf,
    /// `--runtime` for every command; None is podman's configured runc.
    runtime: Option<PathBuf>,
    cgroup: String,
}

/// Run a command with its output in files, not pipes: a detached container keeps the runtime's
/// stdio open, and a pipe would never see its end.
pub fn sh(cmd: &mut Command) -> Output {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let tag = format!("{}-{n}", std::process::id());
    let o = std::env::temp_dir().join(format!("lbox-peer-out-{tag}"));
    let e = std::env::temp_dir().join(format!("lbox-peer-err-{tag}"));
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).expect("out"))
        .stderr(std::fs::File::create(&e).expect("err"))
        .status()
        .expect("spawn");
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap_or_default(),
        stderr: std::fs::read(&e).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(o);
    let _ = std::fs::remove_file(e);
    out
}

impl Podman {
    /// podman with its state under `base/podman`, running containers with `runtime` (or runc).
    pub fn new(base: &Path, runtime: Option<&Path>) -> Podman {
        let turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        let dir = base.join("podman");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[containers]\nnetns=\"none\"\ndefault_ulimits=[\"nofile=1024:1024\",\"nproc=1000:1000\"]\n\
                 [engine]\nruntime=\"runc\"\ncgroup_manager=\"cgroupfs\"\nevents_logger=\"file\"\ntmp_dir=\"{}\"\n",
                dir.join("tmp").display()
            ),
        )
        .expect("conf");
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Podman {
            _turn: turn,
            cgroup: format!("/lbox-it-podman-{}-{n}", std::process::id()),
            dir,
            runtime: runtime.map(Path::to_path_buf),
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"));
        if let Some(r) = &self.runtime {
            c.arg("--runtime").arg(r);
        }
        c
    }

    /// The cgroup parent of this podman's containers (instead of its /libpod_parent), so the
    /// test can remove it afterwards.
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup
    }

    /// `podman ARGS…`; `run`, `create` and `build` get this podman's cgroup parent.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        match args.split_first() {
            Some((&verb, rest)) if matches!(verb, "run" | "create" | "build") => {
                c.arg(verb).arg("--cgroup-parent").arg(&self.cgroup).args(rest)
            }
            _ => c.args(args),
        };
        sh(&mut c)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "podman {args:?}: {}", super::stderr(&out));
        super::stdout(&out)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["system", "reset", "-f"]);
        // podman's overlay storage leaves mounts under its root; undo them before the directory goes.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("storage/overlay"))
            .stderr(Stdio::null())
            .status();
        // conmon makes a child cgroup under ours: the whole tree goes, leaves first.
        super::remove_cgroups(self.cgroup.trim_start_matches('/'));
    }
}
