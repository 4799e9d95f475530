//! podman and containerd drive lbox-runc in place of runc (each with a private store, so the host's
//! images and containers are untouched).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::podman::{sh, Podman};
use common::{bundle, stderr, stdout};

/// A busybox image tarball and a symlink named lbox-runc.
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

/// podman driving lbox-runc, with the busybox image imported as IMG.
struct Peer {
    p: Podman,
    _b: common::Bundle,
}

impl std::ops::Deref for Peer {
    type Target = Podman;
    fn deref(&self) -> &Podman {
        &self.p
    }
}

fn podman(name: &str) -> Peer {
    let (b, tar, runtime) = setup(name);
    let p = Podman::new(b.tmp.path(), Some(&runtime));
    let out = p.run(&["import", tar.to_str().expect("utf8"), IMG]);
    assert!(out.status.success(), "podman import: {}", stderr(&out));
    Peer { p, _b: b }
}

const IMG: &str = "localhost/lbox-busybox:latest";

#[test]
fn podman_runs_containers_with_lbox_runc() {
    let p = podman("podman");
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
    let p = podman("podmantty");
    let mut c = p.cmd();
    // podman attaches while the container already runs and may miss its first output (runc too:
    // 1 run in 15 here), so the container waits a moment before it speaks.
    c.args([
        "run",
        "--cgroup-parent",
        p.cgroup_parent(),
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
    let p = podman("podmanpids");
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
    // The bomb grows to the limit and, its forks refused, partly dies off, possibly before we
    // first look: that the limit refused forks is in pids.events ("max N"), the peak is sampled.
    let refused = || -> u64 {
        std::fs::read_to_string(Path::new(&dir).join("pids.events"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
            .unwrap_or(0)
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
    // Newer kernels keep the high-water mark themselves.
    if let Ok(text) = std::fs::read_to_string(Path::new(&dir).join("pids.peak")) {
        peak = peak.max(text.trim().parse().unwrap_or(0));
    }
    assert!(
        refused() > 0,
        "the bomb should have hit the limit (peak {peak}, no refused fork)"
    );
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
    let p = podman("ctrd");
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

/// The files of an exported container filesystem, each described by kind, mode, owner and content
/// (a hash) or link target, without times. The paths a runtime makes or mounts over (dev, proc,
/// sys, run, the generated /etc files) are left out: they are not the image's.
fn exported_files(archive: &Path) -> std::collections::BTreeMap<String, String> {
    use std::hash::{Hash, Hasher};
    use std::io::Read;
    let mut a = tar::Archive::new(std::fs::File::open(archive).expect("open export"));
    let mut files = std::collections::BTreeMap::new();
    for ent in a.entries().expect("entries") {
        let mut ent = ent.expect("entry");
        let path = ent.path().expect("path").to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").trim_end_matches('/').to_string();
        let top = path.split('/').next().unwrap_or("");
        if path.is_empty()
            || ["dev", "proc", "sys", "run"].contains(&top)
            || ["etc/hosts", "etc/hostname", "etc/resolv.conf", ".containerenv"].contains(&path.as_str())
        {
            continue;
        }
        let h = ent.header().clone();
        let owner = format!(
            "{:o} {}:{}",
            h.mode().expect("mode") & 0o7777,
            h.uid().expect("uid"),
            h.gid().expect("gid")
        );
        let link = || {
            h.link_name()
                .expect("link name")
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let desc = match h.entry_type() {
            tar::EntryType::Directory => format!("dir {owner}"),
            tar::EntryType::Symlink => format!("symlink -> {}", link()),
            tar::EntryType::Link => format!("hard link {owner} -> {}", link().trim_start_matches("./")),
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                ent.read_to_end(&mut data).expect("read");
                let mut hs = std::collections::hash_map::DefaultHasher::new();
                data.hash(&mut hs);
                format!("file {owner} {} bytes #{:x}", data.len(), hs.finish())
            }
            t => format!("{t:?} {owner}"),
        };
        files.insert(path, desc);
    }
    files
}

#[test]
fn an_lbox_built_image_is_pushed_and_then_pulled_and_run_by_podman() {
    let e = common::engine::Engine::new();
    let reg = common::registry::Registry::start(Default::default());
    let ctx = e.path("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nENV GREETING=hello\nWORKDIR /app\nCOPY msg.txt .\n\
         RUN echo \"$GREETING from a build step\" > built.txt && chown user built.txt\n\
         LABEL org.example.app=interop\nEXPOSE 8080\nUSER user\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat msg.txt built.txt; pwd; id -un; echo $GREETING\"]\n",
    )
    .expect("Dockerfile");
    std::fs::write(ctx.join("msg.txt"), "copied from the context\n").expect("msg");
    let img = format!("{}/lbox/interop:1", reg.host());
    e.ok(&["build", "--network", "none", "-t", &img, ctx.to_str().expect("utf8")]);
    let pushed = e.lbox(&["push", &img]);
    assert!(pushed.status.success(), "push: {}", stderr(&pushed));

    let p = Podman::new(e.tmp.path(), None);
    p.ok(&["pull", "--tls-verify=false", &img]);
    assert_eq!(
        p.ok(&["run", "--rm", &img]),
        "copied from the context\nhello from a build step\n/app\nuser\nhello\n"
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&p.ok(&["image", "inspect", "--format", "{{json .Config}}", &img])).expect("json");
    assert_eq!(cfg["Labels"]["org.example.app"], "interop");
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["User"], "user");
    drop(p);
    e.ok(&["rmi", &img]);
    e.assert_clean();
}

#[test]
fn podman_build_and_lbox_build_give_the_same_files() {
    let e = common::engine::Engine::new();
    let ctx = e.path("ctx");
    std::fs::create_dir_all(ctx.join("src/lib")).expect("mkdir");
    std::fs::create_dir_all(ctx.join("arch/pkg")).expect("mkdir");
    let files: &[(&str, &str, u32)] = &[
        ("src/main.sh", "#!/bin/sh\necho main\n", 0o755),
        ("src/lib/util.txt", "util\n", 0o644),
        ("conf.txt", "key=value\n", 0o600),
        ("README.md", "readme\n", 0o644),
        ("NOTES.md", "notes\n", 0o664),
        ("ignored.log", "never copied\n", 0o644),
        ("arch/pkg/data.txt", "from the archive\n", 0o644),
        (".dockerignore", "*.log\narch\n", 0o644),
        (
            "Dockerfile",
            "FROM busybox\n\
             ARG V=1\n\
             ENV GREETING=hello\n\
             WORKDIR /app/sub\n\
             COPY --chown=1000:1000 src/ /app/src/\n\
             COPY --chown=1000:1000 src/ /srv/new/src/\n\
             COPY --chmod=640 conf.txt /etc/app.conf\n\
             ADD files.tar /opt/\n\
             COPY *.md /docs/\n\
             RUN echo \"$GREETING $V\" > /app/out.txt && ln -s /app/out.txt /app/link && ln /app/out.txt /app/hard \
                 && rm /bin/vi && chmod 700 /root && mkdir -p /var/empty/deep\n\
             RUN rm -rf /home/user && mkdir -p /home/user/.config && echo new > /home/user/.config/rc \
                 && chown -R 1000:1000 /home/user\n\
             USER user\n\
             RUN echo by-user > /tmp/by-user\n",
            0o644,
        ),
    ];
    for (name, text, mode) in files {
        let f = ctx.join(name);
        std::fs::write(&f, text).expect("write");
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(*mode)).expect("chmod");
    }
    let st = Command::new("tar")
        .arg("-C")
        .arg(ctx.join("arch"))
        .arg("-cf")
        .arg(ctx.join("files.tar"))
        .arg("pkg")
        .status()
        .expect("tar");
    assert!(st.success());
    let ctx = ctx.to_str().expect("utf8");

    // The same base image in both: lbox's busybox, saved and loaded into podman.
    let base = e.path("base.tar");
    e.ok(&["save", "-o", base.to_str().expect("utf8"), "busybox:latest"]);
    let p = Podman::new(e.tmp.path(), None);
    p.ok(&["load", "-i", base.to_str().expect("utf8")]);

    p.ok(&[
        "build",
        "--network",
        "none",
        "--pull=never",
        "-t",
        "localhost/cmp:1",
        ctx,
    ]);
    let pc = p.ok(&["create", "localhost/cmp:1"]);
    let from_podman = e.path("podman.tar");
    p.ok(&["export", "-o", from_podman.to_str().expect("utf8"), pc.trim()]);

    e.ok(&["build", "--network", "none", "-t", "cmp:1", ctx]);
    let lc = e.ok(&["create", "cmp:1"]);
    let from_lbox = e.path("lbox.tar");
    e.ok(&["export", "-o", from_lbox.to_str().expect("utf8"), lc.trim()]);
    drop(p);

    let (mut a, mut b) = (exported_files(&from_podman), exported_files(&from_lbox));
    // One known difference: buildah chowns /app, which existed before `COPY --chown … /app/src/`.
    // Docker leaves a directory that already exists as it was (moby/buildkit#790), and so does
    // lbox; the directories the COPY creates (/srv, /srv/new) are chowned by all three.
    assert_eq!(a.remove("app").as_deref(), Some("dir 755 1000:1000"));
    assert_eq!(b.remove("app").as_deref(), Some("dir 755 0:0"));
    assert_eq!(b.get("srv/new").map(String::as_str), Some("dir 755 1000:1000"));
    let mut diff = Vec::new();
    for k in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
        if a.get(k) != b.get(k) {
            diff.push(format!("{k}: podman {:?}, lbox {:?}", a.get(k), b.get(k)));
        }
    }
    assert!(diff.is_empty(), "the rootfs differ:\n{}", diff.join("\n"));
    assert!(
        b.contains_key("app/src/lib/util.txt") && b.contains_key("opt/pkg/data.txt"),
        "{b:?}"
    );
    assert!(!b.contains_key("bin/vi") && b.contains_key("home/user/.config/rc"));
    e.ok(&["rm", lc.trim()]);
    e.assert_clean();
}
