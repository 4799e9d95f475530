//! podman and containerd drive lbox-runc in place of runc (each with a private store, so the host's
//! images and containers are untouched).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bundle, stderr, stdout};

/// podman instances share their lock memory (/dev/shm/libpod_lock) whatever their --root: two at
/// once trip over each other's locks. The podman tests take turns.
static PODMAN: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Podman {
    _turn: std::sync::MutexGuard<'static, ()>,
    _b: common::Bundle,
    dir: PathBuf,
    runtime: PathBuf,
}

fn sh(cmd: &mut Command) -> Output {
    // Files, not pipes: a detached container keeps the runtime's stdio open.
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let o = std::env::temp_dir().join(format!("lbox-peer-out-{n}"));
    let e = std::env::temp_dir().join(format!("lbox-peer-err-{n}"));
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

/// A busybox image tarball and a symlink named lbox-runc. (The podman config below gives containers
/// no network: podman's own bridge would add rules to the host's firewall.)
fn setup(name: &str) -> (common::Bundle, PathBuf, PathBuf) {
    let b = bundle(name, &["true"]);
    let tar = b.tmp.path().join("busybox.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(b.rootfs())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(ok.success());
    let runtime = b.tmp.path().join("lbox-runc");
    std::os::unix::fs::symlink(common::lbox(), &runtime).expect("symlink");
    (b, tar, runtime)
}

impl Podman {
    fn new(name: &str) -> Self {
        let turn = PODMAN.lock().unwrap_or_else(|e| e.into_inner());
        let (b, tar, runtime) = setup(name);
        let dir = b.tmp.path().join("podman");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("containers.conf"),
            "[containers]\nnetns=\"none\"\ndefault_ulimits=[\"nofile=1024:1024\",\"nproc=1000:1000\"]\n[engine]\nruntime=\"runc\"\ncgroup_manager=\"cgroupfs\"\nevents_logger=\"file\"\n",
        )
        .expect("conf");
        let p = Podman {
            _turn: turn,
            _b: b,
            dir,
            runtime,
        };
        let out = p.run(&["import", tar.to_str().expect("utf8"), "localhost/lbox-busybox:latest"]);
        assert!(out.status.success(), "podman import: {}", stderr(&out));
        p
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--runtime")
            .arg(&self.runtime);
        c
    }

    /// The cgroup parent podman puts our containers under (instead of its /libpod_parent), so the
    /// test can remove it afterwards.
    fn cgroup_parent() -> String {
        format!("/lbox-it-podman-{}", std::process::id())
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        match args.split_first() {
            Some((&"run", rest)) => c
                .arg("run")
                .arg("--cgroup-parent")
                .arg(Self::cgroup_parent())
                .args(rest),
            _ => c.args(args),
        };
        sh(&mut c)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "podman {args:?}: {}", stderr(&out));
        stdout(&out)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.run(&["rm", "-a", "-f", "-t", "0"]);
        let _ = self.run(&["system", "reset", "-f"]);
        common::remove_cgroups(Self::cgroup_parent().trim_start_matches('/'));
        // podman's overlay storage leaves mounts under its root; undo them before the tempdir goes.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("storage/overlay"))
            .stderr(Stdio::null())
            .status();
    }
}

const IMG: &str = "localhost/lbox-busybox:latest";

#[test]
fn podman_runs_containers_with_lbox_runc() {
    let p = Podman::new("podman");
    assert_eq!(p.ok(&["run", "--rm", IMG, "echo", "hi"]), "hi\n");

    p.ok(&["run", "-d", "--name", "t1", IMG, "sleep", "1000"]);
    assert_eq!(p.ok(&["exec", "t1", "sh", "-c", "echo exec-ok"]), "exec-ok\n");
    assert!(p.ok(&["top", "t1"]).contains("sleep 1000"));
    p.ok(&["pause", "t1"]);
    assert_eq!(p.ok(&["inspect", "-f", "{{.State.Status}}", "t1"]).trim(), "paused");
    p.ok(&["unpause", "t1"]);
    assert_eq!(p.ok(&["inspect", "-f", "{{.State.Status}}", "t1"]).trim(), "running");
    p.ok(&["stop", "-t", "1", "t1"]);
    assert_eq!(p.ok(&["inspect", "-f", "{{.State.Status}}", "t1"]).trim(), "exited");
    p.ok(&["rm", "t1"]);

    let mem = p.ok(&[
        "run",
        "--rm",
        "--memory",
        "64m",
        IMG,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    ]);
    assert_eq!(mem.trim(), "67108864");
}

#[test]
fn podman_interactive_tty() {
    let p = Podman::new("podmantty");
    let mut c = p.cmd();
    // podman attaches while the container already runs and may miss its first output (runc too:
    // 1 run in 15 here), so the container waits a moment before it speaks.
    let parent = Podman::cgroup_parent();
    c.args([
        "run",
        "--cgroup-parent",
        &parent,
        "--rm",
        "-it",
        IMG,
        "sh",
        "-c",
        "sleep 0.5; tty; echo tty-ok",
    ]);
    // script(1) gives podman a real terminal to attach to.
    let line = format!("{:?}", c).replace('"', "");
    let out = sh(Command::new("script").args(["-qec", &line, "/dev/null"]));
    let text = stdout(&out);
    assert!(
        text.contains("/dev/pts/0") && text.contains("tty-ok"),
        "{text} {}",
        stderr(&out)
    );
}

#[test]
fn podman_pids_limit_holds_a_fork_bomb() {
    let p = Podman::new("podmanpids");
    p.ok(&[
        "run",
        "-d",
        "--name",
        "fb",
        "--pids-limit",
        "20",
        IMG,
        "sh",
        "-c",
        "b(){ b | b & }; b; sleep 100",
    ]);
    let pid: i32 = p
        .ok(&["inspect", "-f", "{{.State.Pid}}", "fb"])
        .trim()
        .parse()
        .expect("pid");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let (dir, file) = match cg.lines().find(|l| l.contains(":pids:")) {
        Some(l) => (
            format!("/sys/fs/cgroup/pids{}", l.rsplit(':').next().unwrap_or("")),
            "pids.current",
        ),
        None => (
            format!(
                "/sys/fs/cgroup{}",
                cg.lines().last().unwrap_or("").trim_start_matches("0::")
            ),
            "pids.current",
        ),
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut peak = 0u64;
    while Instant::now() < deadline {
        let cur: u64 = std::fs::read_to_string(Path::new(&dir).join(file))
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0);
        peak = peak.max(cur);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(peak > 10, "the bomb should have grown (peak {peak})");
    assert!(peak <= 20, "pids.current peaked at {peak}");
    p.ok(&["rm", "-f", "-t", "0", "fb"]);
}

struct Containerd {
    child: std::process::Child,
    dir: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("root"))
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn containerd_runs_an_imported_image_with_lbox_runc() {
    let p = Podman::new("ctrd");
    let (_b2, _tar, runtime) = setup("ctrd2");
    let archive = p.dir.join("bb-docker.tar");
    p.ok(&["save", "-o", archive.to_str().expect("utf8"), IMG]);
    let dir = p.dir.join("containerd");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let sock = dir.join("c.sock");
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n[grpc]\n  address = \"{1}\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
            dir.display(),
            sock.display()
        ),
    )
    .expect("config");
    let child = Command::new("containerd")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("log")).expect("log"))
        .spawn()
        .expect("containerd must be installed");
    let _c = Containerd {
        child,
        dir: dir.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let ctr = |args: &[&str]| sh(Command::new("ctr").arg("-a").arg(&sock).args(args));
    let out = ctr(&[
        "images",
        "import",
        "--base-name",
        "localhost/lbox-busybox",
        archive.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "ctr import: {}", stderr(&out));
    let cgroup = format!("/lbox-it-ctr-{}/c1", std::process::id());
    let out = ctr(&[
        "run",
        "--rm",
        "--cgroup",
        &cgroup,
        "--runc-binary",
        runtime.to_str().expect("utf8"),
        IMG,
        "c1",
        "sh",
        "-c",
        "echo hi-from-ctr; id -u",
    ]);
    assert!(out.status.success(), "ctr run: {}", stderr(&out));
    assert_eq!(stdout(&out), "hi-from-ctr\n0\n");
    common::remove_cgroups(&format!("lbox-it-ctr-{}", std::process::id()));
}
