//! Shared fixtures for the runtime's integration tests: a busybox bundle made offline from Debian's
//! busybox-static, a private state root, and a cgroup path below the test's own cgroup.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn lbox() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lbox"))
}

pub struct Bundle {
    pub tmp: tempfile::TempDir,
    pub id: String,
    /// Extra environment for every lbox invocation (e.g. LBOX_CGROUP2_ROOT).
    pub env: Vec<(String, String)>,
}

/// A fresh bundle with a busybox rootfs and runc's default spec, adjusted for tests: no terminal,
/// the given args, and a cgroup below ours named after the container.
pub fn bundle(name: &str, args: &[&str]) -> Bundle {
    let tmp = tempfile::Builder::new().prefix("lbox-it-").tempdir().expect("tempdir");
    let rootfs = tmp.path().join("bundle/rootfs");
    engine::busybox_rootfs(&rootfs);
    for d in ["proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    let id = format!("{name}-{}", std::process::id());
    let b = Bundle {
        tmp,
        id,
        env: Vec::new(),
    };
    let out = b.runc(&["spec", "--bundle", b.dir().to_str().expect("utf8")]);
    assert!(out.status.success(), "spec: {}", stderr(&out));
    b.edit(|s| {
        s["process"]["terminal"] = Value::Bool(false);
        s["process"]["args"] = args.iter().map(|a| Value::String(a.to_string())).collect();
        s["linux"]["cgroupsPath"] = Value::String(format!("lbox-it/{}", b.id));
    });
    b
}

impl Bundle {
    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("bundle")
    }

    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("state")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir().join("rootfs")
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir().join("config.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read config")).expect("json");
        f(&mut v);
        std::fs::write(&path, serde_json::to_string_pretty(&v).expect("encode")).expect("write config");
    }

    /// Run `lbox-runc --root <private> ARGS`. Output goes through files, not pipes: a created or
    /// detached container inherits the runtime's stdio and would hold a pipe open forever.
    pub fn runc(&self, args: &[&str]) -> Output {
        let root = self.root();
        let mut full = vec!["runtime", "--root", root.to_str().expect("utf8")];
        full.extend_from_slice(args);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out_path = self.tmp.path().join(format!("out.{n}"));
        let err_path = self.tmp.path().join(format!("err.{n}"));
        let status = Command::new(lbox())
            .args(&full)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("out file"))
            .stderr(std::fs::File::create(&err_path).expect("err file"))
            .status()
            .expect("run lbox");
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap_or_default(),
            stderr: std::fs::read(&err_path).unwrap_or_default(),
        }
    }

    pub fn run(&self) -> Output {
        let b = self.dir();
        self.runc(&["run", "--bundle", b.to_str().expect("utf8"), &self.id])
    }

    pub fn create(&self) -> Output {
        let b = self.dir();
        self.runc(&["create", "--bundle", b.to_str().expect("utf8"), &self.id])
    }

    pub fn status(&self) -> String {
        let out = self.runc(&["state", &self.id]);
        assert!(out.status.success(), "state: {}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).expect("state json");
        v["status"].as_str().unwrap_or_default().to_string()
    }

    /// The container's cgroup directories in every v1 hierarchy / the v2 tree, found by name.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        find_named(Path::new("/sys/fs/cgroup"), &self.id, 6, &mut out);
        out
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.runc(&["delete", "--force", &self.id]);
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(&d);
        }
        // The shared parent goes with the last test that used it (rmdir fails while others use it).
        let mut parents = Vec::new();
        find_named(Path::new("/sys/fs/cgroup"), "lbox-it", 5, &mut parents);
        for p in parents {
            let _ = std::fs::remove_dir(p);
        }
    }
}

pub fn find_named(dir: &Path, name: &str, depth: u32, out: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let p = e.path();
            if e.file_name().to_string_lossy() == name {
                out.push(p.clone());
            }
            find_named(&p, name, depth - 1, out);
        }
    }
}

/// The nftables table whose rules name `bridge`, if any.
pub fn nft_table_with(bridge: &str) -> Option<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut table = None;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("table ip ") {
            table = Some(t.trim_end_matches(" {").to_string());
        }
        if line.contains(bridge) {
            return table;
        }
    }
    None
}

/// The rules of an nftables table (empty when there is no such table).
pub fn nft_table_text(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .expect("nft");
    stdout(&out)
}

/// Poll `f` for up to `secs`: for what a detached process or a background one does in its own time.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Mount entries that mention a path (a leak check).
pub fn mounts_under(p: &Path) -> usize {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let s = p.to_string_lossy();
    info.lines().filter(|l| l.contains(s.as_ref())).count()
}
pub mod engine;
pub mod podman;
pub mod registry;

/// Remove a cgroup tree of ours in every hierarchy, leaves first (rmdir fails on busy ones).
pub fn remove_cgroups(name: &str) {
    fn rm(dir: &Path) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rm(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.flatten() {
            rm(&h.path().join(name));
        }
    }
}
