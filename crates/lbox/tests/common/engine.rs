//! A private LockBox engine for a test: its own LBOX_ROOT and LBOX_RUN in a temp directory, a
//! busybox image imported offline, and a check on drop that nothing was left behind (no
//! container, no mount below the root, no cgroup of any container the test made).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Engine {
    pub tmp: tempfile::TempDir,
    pub ids: std::cell::RefCell<BTreeSet<String>>,
    /// This test's cgroup parent (LBOX_CGROUP_PARENT), removed at the end.
    pub cgroup_parent: String,
}

pub fn busybox_rootfs(dir: &Path) {
    for d in ["bin", "etc", "tmp", "root", "home/user"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("busybox-static must be installed");
    let list = Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        if a != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(a));
        }
    }
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(
        dir.join("etc/group"),
        "root:x:0:\nuser:x:1000:\nwheel:x:10:user\nnogroup:x:65534:\n",
    )
    .expect("group");
}

impl Engine {
    /// A fresh engine with `busybox:latest` (CMD sh) imported.
    pub fn new() -> Engine {
        let tmp = tempfile::Builder::new().prefix("lbox-ct-").tempdir().expect("tempdir");
        let cgroup_parent = format!(
            "lbox-test-{}",
            tmp.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let e = Engine {
            tmp,
            ids: Default::default(),
            cgroup_parent,
        };
        let rootfs = e.path("rootfs");
        busybox_rootfs(&rootfs);
        let tar = e.path("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success());
        let o = e.lbox(&[
            "import",
            "-q",
            tar.to_str().expect("utf8"),
            "busybox:latest",
            "--change",
            "CMD [\"sh\"]",
        ]);
        assert!(o.status.success(), "import: {}", super::stderr(&o));
        e
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    pub fn root(&self) -> PathBuf {
        self.path("root")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(super::lbox());
        c.args(args)
            .env("LBOX_ROOT", self.root())
            .env("LBOX_RUN", self.path("run"))
            .env("LBOX_CGROUP_PARENT", &self.cgroup_parent)
            .stdin(Stdio::null());
        c
    }

    pub fn lbox(&self, args: &[&str]) -> Output {
        let o = self.cmd(args).output().expect("run lbox");
        self.note_ids(&o);
        o
    }

    /// Run and expect success; stdout trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.lbox(args);
        assert!(
            o.status.success(),
            "lbox {args:?} failed ({:?}): {}{}",
            o.status.code(),
            super::stdout(&o),
            super::stderr(&o)
        );
        super::stdout(&o).trim().to_string()
    }

    /// Run and expect failure with `code`; the error's (single) line.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.lbox(args);
        let err = super::stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(code),
            "lbox {args:?}: stdout {} stderr {err}",
            super::stdout(&o)
        );
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("lbox:")).collect();
        assert_eq!(lines.len(), 1, "one error line expected from lbox {args:?}: {err}");
        lines[0].to_string()
    }

    fn note_ids(&self, o: &Output) {
        for w in super::stdout(o).split_whitespace() {
            if w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()) {
                self.ids.borrow_mut().insert(w.to_string());
            }
        }
    }

    /// Every container ID the engine knows (ps -aq --no-trunc).
    pub fn all_ids(&self) -> Vec<String> {
        let ids: Vec<String> = self
            .ok(&["ps", "-aq", "--no-trunc", "--external"])
            .lines()
            .map(String::from)
            .collect();
        self.ids.borrow_mut().extend(ids.iter().cloned());
        ids
    }

    /// The bridge device of a network.
    pub fn bridge_of(&self, network: &str) -> String {
        self.ok(&[
            "network",
            "inspect",
            "-f",
            "{{index .Options \"com.docker.network.bridge.name\"}}",
            network,
        ])
    }

    pub fn inspect(&self, name: &str, fmt: &str) -> String {
        self.ok(&["inspect", "-f", fmt, name])
    }

    /// Poll `f` for up to `secs`.
    pub fn eventually(&self, secs: u64, what: &str, f: impl FnMut() -> bool) {
        super::eventually(secs, what, f)
    }

    /// Cgroup directories of the containers this test made that still exist.
    pub fn leftover_cgroups(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for id in self.ids.borrow().iter() {
            super::find_named(Path::new("/sys/fs/cgroup"), id, 8, &mut out);
        }
        out
    }

    pub fn assert_clean(&self) {
        // A removed container's rootfs is unmounted by a background process: give it a moment.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while super::mounts_under(&self.root()) > 0 && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            super::mounts_under(&self.root()),
            0,
            "mounts left under {}",
            self.root().display()
        );
        // A `--rm` container's cgroups go in the background too.
        while !self.leftover_cgroups().is_empty() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let left = self.leftover_cgroups();
        assert!(left.is_empty(), "cgroups left: {left:?}");
        // ... and their runtime state (caches are named with an '@').
        let runtime = self.path("run/runtime");
        let states = || -> Vec<String> {
            std::fs::read_dir(&runtime)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| !n.contains('@'))
                        .collect()
                })
                .unwrap_or_default()
        };
        while !states().is_empty() && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(states().is_empty(), "runtime state left: {:?}", states());
        // A removed container's pooled network namespace goes with its files, in the background.
        let taken = self.path("run/netns-pool/taken");
        let claimed = || std::fs::read_dir(&taken).map(|d| d.count()).unwrap_or(0);
        while claimed() > 0 && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            claimed(),
            0,
            "pooled network namespaces still claimed in {}",
            taken.display()
        );
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let ids = self
            .cmd(&["ps", "-aq", "--no-trunc", "--external"])
            .output()
            .map(|o| super::stdout(&o))
            .unwrap_or_default();
        for id in ids.lines() {
            let _ = self.cmd(&["rm", "-f", "-v", id]).output();
        }
        // Networks own bridges and nftables tables in the host's namespace: never leave them.
        let _ = self.cmd(&["system", "reset", "-f"]).output();
        // A failed test may leave mounts: never delete through them.
        // (The run directory holds the network namespace pool's bind mounts.)
        let all = self.tmp.path().to_path_buf();
        for _ in 0..3 {
            if super::mounts_under(&all) == 0 {
                break;
            }
            let _ = Command::new("umount").arg("-R").arg("-l").arg(self.root()).output();
            let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            for line in mi.lines() {
                if let Some(p) = line.split_whitespace().nth(4) {
                    if Path::new(p).starts_with(&all) {
                        let _ = Command::new("umount").arg("-l").arg(p).output();
                    }
                }
            }
        }
        for dir in self.leftover_cgroups() {
            let _ = std::fs::remove_dir(dir);
        }
        let mut parents = Vec::new();
        super::find_named(Path::new("/sys/fs/cgroup"), &self.cgroup_parent, 8, &mut parents);
        for dir in parents {
            let _ = std::fs::remove_dir(dir);
        }
    }
}
