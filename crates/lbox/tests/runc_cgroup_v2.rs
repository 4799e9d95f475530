//! The cgroup v2 code paths, on this hybrid host through its v2 hierarchy (/sys/fs/cgroup/unified,
//! named with LBOX_CGROUP2_ROOT), or through /sys/fs/cgroup itself on a v2 host.

mod common;

use std::path::{Path, PathBuf};

use common::{bundle, stderr, stdout, Bundle};
use serde_json::{json, Value};

fn v2_root() -> PathBuf {
    for p in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let out = std::process::Command::new("stat")
            .args(["-f", "-c", "%T", p])
            .output()
            .expect("stat");
        if String::from_utf8_lossy(&out.stdout).trim() == "cgroup2fs" {
            return PathBuf::from(p);
        }
    }
    panic!("this host has no cgroup v2 hierarchy to test with");
}

/// A bundle run in v2 mode, without resources this v2 hierarchy may lack controllers for.
fn v2_bundle(name: &str, args: &[&str]) -> (Bundle, PathBuf) {
    let mut b = bundle(name, args);
    let root = v2_root();
    b.env.push(("LBOX_CGROUP2_ROOT".into(), root.display().to_string()));
    b.edit(|s| s["linux"]["resources"] = json!({}));
    // Our own v2 cgroup is the base of the relative cgroupsPath.
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let base = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_start_matches('/')
        .to_string();
    let dir = root.join(base).join("lbox-it").join(&b.id);
    (b, dir)
}

#[test]
fn v2_lifecycle_pause_and_cleanup() {
    let (b, dir) = v2_bundle("v2life", &["sleep", "1000"]);
    let out = b.create();
    assert!(out.status.success(), "{}", stderr(&out));
    let state: Value = serde_json::from_slice(&b.runc(&["state", &b.id]).stdout).unwrap();
    let pid = state["pid"].as_i64().unwrap();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).expect("the container's v2 cgroup");
    assert_eq!(procs.trim(), pid.to_string());
    assert!(b.runc(&["start", &b.id]).status.success());
    assert!(b.runc(&["pause", &b.id]).status.success());
    assert_eq!(std::fs::read_to_string(dir.join("cgroup.freeze")).unwrap().trim(), "1");
    assert_eq!(b.status(), "paused");
    assert!(b.runc(&["resume", &b.id]).status.success());
    assert_eq!(b.status(), "running");
    let ps: Vec<i64> = serde_json::from_slice(&b.runc(&["ps", "--format", "json", &b.id]).stdout).unwrap();
    assert_eq!(ps, vec![pid]);
    let ev: Value = serde_json::from_slice(&b.runc(&["events", "--stats", &b.id]).stdout).unwrap();
    assert!(ev["data"]["cpu"]["usage"]["total"].as_u64().is_some(), "{ev}");
    assert!(b.runc(&["delete", "--force", &b.id]).status.success());
    assert!(!dir.exists(), "cgroup {} left behind", dir.display());
    let _ = std::fs::remove_dir(dir.parent().unwrap_or(Path::new("/nonexistent")));
}

#[test]
fn v2_cgroup_namespace_and_mount() {
    let (b, dir) = v2_bundle(
        "v2ns",
        &[
            "sh",
            "-c",
            "tail -1 /proc/self/cgroup; test -f /sys/fs/cgroup/cgroup.freeze && echo v2fs",
        ],
    );
    b.edit(|s| {
        let ns = s["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "cgroup"}));
    });
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "0::/\nv2fs\n");
    // Without a cgroup namespace the container sees its real path.
    let (b, _) = v2_bundle("v2nons", &["tail", "-1", "/proc/self/cgroup"]);
    let out = b.run();
    assert!(
        stdout(&out).trim().ends_with(&format!("/lbox-it/{}", b.id)),
        "{}",
        stdout(&out)
    );
    assert!(!dir.exists());
    let _ = std::fs::remove_dir(dir.parent().unwrap_or(Path::new("/nonexistent")));
}
