//! The image store end to end: real registries (Debian's docker-registry, with basic auth and TLS),
//! images made by tools we did not write (umoci, skopeo, podman), hostile layers and broken blobs.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::podman::Podman;
use common::registry::{Registry, RegistryOpts, Route, Scripted, TokenServer};

/// An lbox with its own store, auth file and (empty) registries configuration.
struct Lbox {
    dir: tempfile::TempDir,
}

impl Lbox {
    fn new() -> Lbox {
        Lbox {
            dir: tempfile::Builder::new().prefix("lbox-img-").tempdir().expect("tempdir"),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(common::lbox());
        c.env("LBOX_ROOT", self.root())
            .env("LBOX_AUTH_FILE", self.dir.path().join("auth.json"))
            .env("LBOX_REGISTRIES_CONF", self.dir.path().join("none.toml"))
            .env("HOME", self.dir.path())
            .env_remove("LBOX_CERTS_DIR")
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run lbox")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "lbox {args:?} failed: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "lbox {args:?} should fail; stdout: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    fn store_dir(&self, d: &str) -> Vec<String> {
        std::fs::read_dir(self.root().join("images").join(d))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A busybox image made with umoci (not by us), in an OCI layout at `dir/oci:bb`.
fn umoci_image(dir: &Path, greeting: &str) -> PathBuf {
    let oci = dir.join("oci");
    sh(Command::new("umoci").args(["init", "--layout"]).arg(&oci));
    sh(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:bb", oci.display())));
    let bundle = dir.join("umoci-bundle");
    sh(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:bb", oci.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox");
    for a in ["sh", "cat", "echo", "ls", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).expect("symlink");
    }
    std::fs::write(rootfs.join("greeting"), greeting).expect("greeting");
    sh(Command::new("umoci")
        .args(["repack", "--image"])
        .arg(format!("{}:bb", oci.display()))
        .arg(&bundle));
    sh(Command::new("umoci")
        .args(["config", "--image"])
        .arg(format!("{}:bb", oci.display()))
        .args(["--config.cmd", "/bin/cat", "--config.cmd", "/greeting"]));
    oci
}

fn skopeo_push(oci: &Path, dest: &str, creds: Option<&str>) {
    let mut c = Command::new("skopeo");
    c.args(["copy", "--dest-tls-verify=false"]);
    if let Some(cr) = creds {
        c.args(["--dest-creds", cr]);
    }
    sh(c.arg(format!("oci:{}:bb", oci.display()))
        .arg(format!("docker://{dest}")));
}

/// An `lbox image mount`, unmounted when dropped (also when a test fails half-way).
struct Mounted<'a> {
    lb: &'a Lbox,
    path: String,
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = self.lb.run(&["image", "unmount", &self.path]);
    }
}

/// Run `args` in a bundle whose rootfs is the image mounted by `lbox image mount`.
fn run_in_image(lb: &Lbox, image: &str, args: &[&str]) -> String {
    let mounted = Mounted {
        lb,
        path: lb.ok(&["image", "mount", image]).trim().to_string(),
    };
    let merged = mounted.path.clone();
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let bdir = lb.dir.path().join(format!(
        "bundle-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&bdir).expect("mkdir");
    lb.ok(&["runtime", "spec", "--bundle", bdir.to_str().expect("utf8")]);
    let cfg = bdir.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg).expect("read")).expect("json");
    spec["root"] = serde_json::json!({ "path": merged, "readonly": false });
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
    let id = format!(
        "img-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    spec["linux"]["cgroupsPath"] = format!("lbox-it/{id}").into();
    std::fs::write(&cfg, spec.to_string()).expect("write");
    let out = lb
        .cmd()
        .args(["runtime", "--root"])
        .arg(lb.dir.path().join("state"))
        .args(["run", "--bundle", bdir.to_str().expect("utf8"), &id])
        .output()
        .expect("run");
    drop(mounted);
    // The runtime removes the container's cgroup; the shared parent goes when no test uses it.
    let mut parents = Vec::new();
    common::find_named(Path::new("/sys/fs/cgroup"), "lbox-it", 5, &mut parents);
    for p in parents {
        let _ = std::fs::remove_dir(p);
    }
    assert!(out.status.success(), "lbox-runc run: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn pull_run_push_round_trip_with_umoci_skopeo_and_podman() {
    let reg = Registry::start(RegistryOpts::default());
    let lb = Lbox::new();
    let oci = umoci_image(lb.dir.path(), "hello from umoci\n");
    let src = format!("{}/test/bb:v1", reg.host());
    skopeo_push(&oci, &src, None);

    let out = lb.run(&["pull", &src]);
    assert!(out.status.success(), "pull: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), src);
    assert!(text(&out.stderr).contains("Pull complete"), "{}", text(&out.stderr));
    let images = lb.ok(&["images"]);
    assert!(
        images.contains(&format!("{}/test/bb", reg.host())) && images.contains("v1"),
        "{images}"
    );
    // A second pull finds everything in place.
    let again = lb.run(&["pull", &src]);
    assert!(
        text(&again.stderr).contains("Already exists"),
        "{}",
        text(&again.stderr)
    );

    // The same image with zstd-compressed layers.
    let zst = format!("{}/test/zstd:1", reg.host());
    sh(Command::new("skopeo")
        .args(["copy", "--dest-compress-format", "zstd", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:bb", oci.display()))
        .arg(format!("docker://{zst}")));
    lb.ok(&["pull", &zst]);
    assert_eq!(
        run_in_image(&lb, &zst, &["/bin/cat", "/greeting"]),
        "hello from umoci\n"
    );
    lb.ok(&["rmi", &zst]);

    // The image runs through lbox-runc on its overlay rootfs.
    assert_eq!(
        run_in_image(&lb, &src, &["/bin/cat", "/greeting"]),
        "hello from umoci\n"
    );
    assert!(lb.store_dir("../mounts").is_empty(), "image unmount leaves nothing");

    // Push under another repository: blobs are mounted, not uploaded.
    let other = format!("{}/other/bb:v2", reg.host());
    lb.ok(&["tag", &src, &other]);
    let pushed = lb.run(&["push", &other]);
    assert!(pushed.status.success(), "push: {}", text(&pushed.stderr));
    assert!(
        text(&pushed.stderr).contains("Mounted from test/bb"),
        "{}",
        text(&pushed.stderr)
    );

    // An image made here (import) is uploaded, copied back by skopeo, and runs in podman.
    let tarball = lb.dir.path().join("rootfs.tar.gz");
    sh(Command::new("tar")
        .arg("-C")
        .arg(lb.dir.path().join("umoci-bundle/rootfs"))
        .arg("-czf")
        .arg(&tarball)
        .arg("."));
    let imported = format!("localhost:{}/imp/bb:1", reg.port);
    lb.ok(&[
        "import",
        "--change",
        "CMD [\"/bin/cat\", \"/greeting\"]",
        tarball.to_str().expect("utf8"),
        &imported,
    ]);
    let up = lb.run(&["push", &imported]);
    assert!(text(&up.stderr).contains("Pushed"), "{}", text(&up.stderr));
    sh(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{imported}"))
        .arg(format!("oci:{}:back", lb.dir.path().join("back").display())));
    let podman = Podman::new(lb.dir.path(), None);
    let pulled = podman.run(&["pull", "--tls-verify=false", &imported]);
    let ran = podman.run(&["run", "--rm", &imported]);
    drop(podman);
    assert!(pulled.status.success(), "podman pull: {}", text(&pulled.stderr));
    assert_eq!(
        text(&ran.stdout),
        "hello from umoci\n",
        "podman run: {}",
        text(&ran.stderr)
    );

    // rmi frees exactly what no image uses: untagging the first name keeps the shared image.
    assert!(lb.ok(&["rmi", &other]).contains("Untagged"));
    assert!(lb.ok(&["images", "-q"]).lines().count() == 2);
    lb.ok(&["rmi", &src, &imported]);
    assert_eq!(lb.ok(&["images", "-q"]), "");
    assert!(
        lb.store_dir("layers").is_empty(),
        "layers left: {:?}",
        lb.store_dir("layers")
    );
    assert!(
        lb.store_dir("blobs/sha256").is_empty(),
        "blobs left: {:?}",
        lb.store_dir("blobs/sha256")
    );
    let missing = lb.fails(&["rmi", &src]);
    assert!(missing.contains("not found locally"), "{missing}");
}

#[test]
fn basic_auth_login_and_logout() {
    let reg = Registry::start(RegistryOpts {
        basic_auth: Some(("alice".into(), "s3cret-pw".into())),
        ..Default::default()
    });
    let lb = Lbox::new();
    let oci = umoci_image(lb.dir.path(), "private\n");
    let img = format!("{}/priv/bb:1", reg.host());
    // Docker schema 2 media types this time (skopeo --format v2s2).
    sh(Command::new("skopeo")
        .args([
            "copy",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:s3cret-pw",
        ])
        .arg(format!("oci:{}:bb", oci.display()))
        .arg(format!("docker://{img}")));

    let denied = lb.fails(&["pull", &img]);
    assert!(denied.contains(&format!("lbox login {}", reg.host())), "{denied}");
    let mut bad = lb
        .cmd()
        .args(["login", "-u", "alice", "--password-stdin", &reg.host()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    bad.stdin.take().expect("stdin").write_all(b"wrong\n").expect("write");
    let bad = bad.wait_with_output().expect("wait");
    assert!(
        !bad.status.success() && text(&bad.stderr).contains("wrong username or password"),
        "{}",
        text(&bad.stderr)
    );
    assert!(
        !lb.dir.path().join("auth.json").exists(),
        "a failed login stores nothing"
    );

    let mut good = lb
        .cmd()
        .args(["login", "-u", "alice", "--password-stdin", &reg.host()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    good.stdin
        .take()
        .expect("stdin")
        .write_all(b"s3cret-pw\n")
        .expect("write");
    let good = good.wait_with_output().expect("wait");
    assert!(good.status.success(), "login: {}", text(&good.stderr));
    assert!(text(&good.stdout).contains("Login Succeeded"));
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(lb.dir.path().join("auth.json")).expect("auth file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    lb.ok(&["pull", &img]);
    assert_eq!(run_in_image(&lb, &img, &["/bin/cat", "/greeting"]), "private\n");
    lb.ok(&["logout", &reg.host()]);
    lb.ok(&["rmi", &img]);
    lb.fails(&["pull", &img]);
    assert!(lb.fails(&["logout", &reg.host()]).contains("not logged in"));
    // Credentials from `docker login` (~/.docker/config.json) are used too.
    std::fs::create_dir_all(lb.dir.path().join(".docker")).expect("mkdir");
    std::fs::write(
        lb.dir.path().join(".docker/config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0LXB3"}}}}}}"#, reg.host()),
    )
    .expect("docker config");
    lb.ok(&["pull", &img]);
    let inspect: serde_json::Value = serde_json::from_str(&lb.ok(&["image", "inspect", &img])).expect("json");
    assert_eq!(
        inspect[0]["Manifest"]["MediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[test]
fn tls_registry_is_trusted_only_with_its_ca() {
    let reg = Registry::start(RegistryOpts {
        tls: true,
        ..Default::default()
    });
    let lb = Lbox::new();
    let oci = umoci_image(lb.dir.path(), "over tls\n");
    let img = format!("{}/tls/bb:1", reg.host());
    skopeo_push(&oci, &img, None);
    let refused = lb.fails(&["pull", "--tls-verify=true", &img]);
    assert!(
        refused.to_lowercase().contains("certificate") || refused.contains("UnknownIssuer"),
        "{refused}"
    );
    let certs = reg.certs_dir();
    lb.ok(&[
        "pull",
        "--tls-verify=true",
        "--cert-dir",
        certs.to_str().expect("utf8"),
        &img,
    ]);
    assert_eq!(run_in_image(&lb, &img, &["/bin/cat", "/greeting"]), "over tls\n");
}

/// A ustar header written by hand, so names like "../x" survive (the tar crate refuses them).
fn header(name: &str, kind: u8, size: usize, link: &str, dev: (u32, u32)) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mode = if kind == b'5' { "0000755\0" } else { "0000644\0" };
    h[100..108].copy_from_slice(mode.as_bytes());
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[329..337].copy_from_slice(format!("{:07o}\0", dev.0).as_bytes());
    h[337..345].copy_from_slice(format!("{:07o}\0", dev.1).as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn entry(name: &str, kind: u8, data: &[u8], link: &str) -> Vec<u8> {
    let mut v = header(name, kind, data.len(), link, (0, 0));
    v.extend_from_slice(data);
    v.resize(v.len().div_ceil(512) * 512, 0);
    v
}

fn tarball(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<u8> = entries.concat();
    v.extend_from_slice(&[0u8; 1024]);
    v
}

#[test]
fn hostile_layers_are_refused_and_nothing_escapes() {
    let lb = Lbox::new();
    let outside = tempfile::tempdir().expect("tempdir");
    let out = outside
        .path()
        .to_str()
        .expect("utf8")
        .trim_start_matches('/')
        .to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot",
            tarball(&[entry("../escaped", b'0', b"x", "")]),
            "leaves the layer root",
        ),
        (
            "deep-dotdot",
            tarball(&[entry("a/../../escaped", b'0', b"x", "")]),
            "leaves the layer root",
        ),
        (
            "absolute",
            tarball(&[entry(&format!("/{out}/abs"), b'0', b"x", "")]),
            "absolute path",
        ),
        (
            "symlink-out",
            tarball(&[
                entry("link", b'2', b"", outside.path().to_str().expect("utf8")),
                entry("link/pwned", b'0', b"x", ""),
            ]),
            "symbolic link",
        ),
        (
            "symlink-relative-out",
            tarball(&[
                entry("up", b'2', b"", "../../../../../../.."),
                entry(&format!("up/{out}/pwned"), b'0', b"x", ""),
            ]),
            "symbolic link",
        ),
        (
            "hardlink-absolute",
            tarball(&[entry("hl", b'1', b"", "/etc/passwd")]),
            "absolute path",
        ),
        (
            "hardlink-dotdot",
            tarball(&[entry("hl", b'1', b"", "../../../../etc/passwd")]),
            "leaves the layer root",
        ),
        (
            "hardlink-missing",
            tarball(&[entry("hl", b'1', b"", "etc/passwd")]),
            "does not exist",
        ),
        (
            "whiteout-dotdot",
            tarball(&[entry("dir/.wh...", b'0', b"", "")]),
            "whiteout",
        ),
        ("whiteout-dot", tarball(&[entry(".wh..", b'0', b"", "")]), "whiteout"),
        (
            "truncated",
            {
                let mut t = entry("big", b'0', &[7u8; 4096], "");
                t.truncate(512 + 1000);
                t
            },
            "truncated",
        ),
    ];
    for (name, data, want) in &cases {
        let f = lb.dir.path().join(format!("{name}.tar"));
        std::fs::write(&f, data).expect("write");
        let err = lb.fails(&["import", f.to_str().expect("utf8"), &format!("hostile/{name}")]);
        assert!(err.contains(want), "{name}: expected {want:?} in: {err}");
        assert!(err.starts_with("lbox: "), "{name}: one clear line: {err}");
    }
    // A device node, imported by a caller without CAP_MKNOD.
    let dev = tarball(&[{
        let mut h = header("kmsg", b'3', 0, "", (1, 11));
        h.truncate(512);
        h
    }]);
    let f = lb.dir.path().join("dev.tar");
    std::fs::write(&f, dev).expect("write");
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-mknod", "--inh-caps", "-mknod", "--"])
        .arg(common::lbox())
        .args([
            "--root",
            lb.root().to_str().expect("utf8"),
            "import",
            f.to_str().expect("utf8"),
            "hostile/dev",
        ])
        .output()
        .expect("setpriv");
    assert!(
        !out.status.success() && text(&out.stderr).contains("CAP_MKNOD"),
        "{}",
        text(&out.stderr)
    );

    assert!(
        std::fs::read_dir(outside.path()).expect("read").next().is_none(),
        "something escaped the store"
    );
    assert_eq!(lb.ok(&["images", "-q"]), "");
    assert!(
        lb.store_dir("layers").is_empty() && lb.store_dir("tmp").is_empty(),
        "half-made layers left behind"
    );
    assert!(
        lb.store_dir("blobs/sha256").is_empty(),
        "blobs of failed imports left: {:?}",
        lb.store_dir("blobs/sha256")
    );
}

fn digest(data: &[u8]) -> String {
    use std::fmt::Write;
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut child = out;
    child.stdin.take().expect("stdin").write_all(data).expect("write");
    let o = child.wait_with_output().expect("wait");
    let mut s = String::from("sha256:");
    let _ = write!(s, "{}", text(&o.stdout).split_whitespace().next().unwrap_or(""));
    s
}

/// Serve a one-layer image from the scripted registry; returns (reference, layer digest, layer bytes).
fn scripted_image(reg: &Scripted, repo: &str, layer: Vec<u8>, layer_size: Option<usize>) -> (String, String) {
    let diff = digest(&layer);
    let config =
        format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#);
    let cd = digest(config.as_bytes());
    let ld = digest(&layer);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer_size.unwrap_or(layer.len())
    );
    reg.set(
        &format!("/v2/{repo}/manifests/latest"),
        Route::ok("application/vnd.oci.image.manifest.v1+json", manifest.into_bytes()),
    );
    reg.set(
        &format!("/v2/{repo}/blobs/{cd}"),
        Route::ok("application/octet-stream", config.into_bytes()),
    );
    reg.set(
        &format!("/v2/{repo}/blobs/{ld}"),
        Route::ok("application/octet-stream", layer),
    );
    (format!("{}/{repo}", reg.host()), ld)
}

#[test]
fn broken_blobs_are_refused() {
    let reg = Scripted::start();
    reg.set("/v2/", Route::ok("application/json", b"{}".to_vec()));
    let lb = Lbox::new();
    let layer = tarball(&[entry("file", b'0', b"content", "")]);

    // A good image first, to show the server works.
    let (good, _) = scripted_image(&reg, "good", layer.clone(), None);
    lb.ok(&["pull", &good]);
    lb.ok(&["rmi", &good]);

    // The layer served is not the one the manifest names.
    let (swapped, ld) = scripted_image(&reg, "swapped", layer.clone(), None);
    let other = tarball(&[entry("file", b'0', b"tampered", "")]);
    reg.set(
        &format!("/v2/swapped/blobs/{ld}"),
        Route::ok("application/octet-stream", other),
    );
    assert!(lb.fails(&["pull", &swapped]).contains("digest mismatch"));

    // The manifest's size is smaller than the blob.
    let (short, _) = scripted_image(&reg, "short", layer.clone(), Some(layer.len() - 512));
    assert!(lb.fails(&["pull", &short]).contains("size mismatch"));

    // The connection is cut mid-blob.
    let (cut, ld) = scripted_image(&reg, "cut", layer.clone(), None);
    let mut r = Route::ok("application/octet-stream", layer[..700].to_vec());
    r.claimed_len = Some(layer.len());
    reg.set(&format!("/v2/cut/blobs/{ld}"), r);
    let err = lb.fails(&["pull", &cut]);
    assert!(err.contains(&ld), "the error names the blob: {err}");

    // The manifest points at a blob the registry does not have.
    let (missing, ld) = scripted_image(&reg, "missing", layer.clone(), None);
    reg.routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&format!("/v2/missing/blobs/{ld}"));
    let err = lb.fails(&["pull", &missing]);
    assert!(err.contains("not found") && err.contains(&ld), "{err}");

    assert_eq!(lb.ok(&["images", "-q"]), "");
    assert!(lb.store_dir("layers").is_empty() && lb.store_dir("tmp").is_empty());
}

#[test]
fn an_interrupted_pull_leaves_no_half_image() {
    let reg = Scripted::start();
    reg.set("/v2/", Route::ok("application/json", b"{}".to_vec()));
    let lb = Lbox::new();
    let big: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let layer = tarball(&[entry("big", b'0', &big, "")]);
    let (img, ld) = scripted_image(&reg, "slow", layer.clone(), None);
    let mut slow = Route::ok("application/octet-stream", layer.clone());
    slow.delay = Some(std::time::Duration::from_millis(50));
    reg.set(&format!("/v2/slow/blobs/{ld}"), slow);
    let mut child = lb
        .cmd()
        .args(["pull", &img])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
    let _ = child.wait();
    assert_eq!(lb.ok(&["images", "-q"]), "", "no half image after kill -9");
    reg.set(
        &format!("/v2/slow/blobs/{ld}"),
        Route::ok("application/octet-stream", layer),
    );
    lb.ok(&["pull", &img]);
    assert_eq!(lb.ok(&["images", "-q"]).lines().count(), 1);
    assert!(
        lb.store_dir("tmp").is_empty(),
        "the dead pull's leftovers are cleared: {:?}",
        lb.store_dir("tmp")
    );
}

#[test]
fn save_and_load_interchange_with_podman_and_skopeo() {
    let lb = Lbox::new();
    let oci = umoci_image(lb.dir.path(), "archived\n");
    let podman = Podman::new(lb.dir.path(), None);
    let p = |n: &str| lb.dir.path().join(n).to_str().expect("utf8").to_string();

    // skopeo writes an oci-archive and a docker-archive of the umoci image; lbox loads both.
    sh(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:bb", oci.display()))
        .arg(format!("oci-archive:{}:localhost/from/skopeo-oci:1", p("s-oci.tar"))));
    sh(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:bb", oci.display()))
        .arg(format!(
            "docker-archive:{}:localhost/from/skopeo-docker:1",
            p("s-docker.tar")
        )));
    let loaded = lb.ok(&["load", "-i", &p("s-oci.tar")]);
    assert!(loaded.contains("Loaded image: localhost/from/skopeo-oci:1"), "{loaded}");
    let loaded = lb.ok(&["load", "-i", &p("s-docker.tar")]);
    assert!(
        loaded.contains("Loaded image: localhost/from/skopeo-docker:1"),
        "{loaded}"
    );
    assert_eq!(
        run_in_image(&lb, "localhost/from/skopeo-oci:1", &["/bin/cat", "/greeting"]),
        "archived\n"
    );
    assert_eq!(
        run_in_image(&lb, "localhost/from/skopeo-docker:1", &["/bin/cat", "/greeting"]),
        "archived\n"
    );

    // lbox save output loads in podman (both formats) and runs there.
    lb.ok(&["save", "-o", &p("l-docker.tar"), "localhost/from/skopeo-docker:1"]);
    lb.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        &p("l-oci.tar"),
        "localhost/from/skopeo-oci:1",
    ]);
    assert!(podman
        .ok(&["load", "-i", &p("l-docker.tar")])
        .contains("localhost/from/skopeo-docker:1"));
    assert!(podman
        .ok(&["load", "-i", &p("l-oci.tar")])
        .contains("localhost/from/skopeo-oci:1"));
    assert_eq!(
        podman.ok(&["run", "--rm", "localhost/from/skopeo-docker:1"]),
        "archived\n"
    );
    assert_eq!(podman.ok(&["run", "--rm", "localhost/from/skopeo-oci:1"]), "archived\n");

    // podman save output loads in lbox, in both formats.
    podman.ok(&["tag", "localhost/from/skopeo-oci:1", "localhost/from/podman:2"]);
    podman.ok(&["save", "-o", &p("p-docker.tar"), "localhost/from/podman:2"]);
    podman.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        &p("p-oci.tar"),
        "localhost/from/podman:2",
    ]);
    lb.ok(&["rmi", "localhost/from/skopeo-oci:1", "localhost/from/skopeo-docker:1"]);
    lb.ok(&["load", "-i", &p("p-docker.tar")]);
    assert_eq!(
        run_in_image(&lb, "localhost/from/podman:2", &["/bin/cat", "/greeting"]),
        "archived\n"
    );
    lb.ok(&["rmi", "localhost/from/podman:2"]);
    let loaded = lb.ok(&["load", "-i", &p("p-oci.tar")]);
    assert!(loaded.contains("Loaded image"), "{loaded}");
    assert_eq!(lb.ok(&["images", "-q"]).lines().count(), 1);

    // Several images in one archive, and a round trip through lbox itself.
    let junk = lb.ok(&["import", &p("l-docker.tar"), "junk/notarootfs:1"]);
    let ids = lb.ok(&["images", "-q"]);
    let podman_loaded = ids.lines().find(|id| !junk.contains(id)).expect("the podman image");
    lb.ok(&["save", "-o", &p("two.tar"), "junk/notarootfs:1", podman_loaded]);
    let other = Lbox::new();
    let loaded = other.ok(&["load", "-i", &p("two.tar")]);
    assert!(loaded.contains("junk/notarootfs:1"), "{loaded}");
    assert_eq!(other.ok(&["images", "-q"]).lines().count(), 2);

    // Bad archives: not an archive at all, and one whose manifest names a file outside it.
    std::fs::write(p("junk.tar"), b"not a tar at all, just text").expect("write");
    assert!(lb.fails(&["load", "-i", &p("junk.tar")]).starts_with("lbox: "));
    let evil = tarball(&[entry(
        "manifest.json",
        b'0',
        br#"[{"Config":"../../../etc/passwd","RepoTags":["x:1"],"Layers":[]}]"#,
        "",
    )]);
    std::fs::write(p("evil.tar"), evil).expect("write");
    assert!(lb
        .fails(&["load", "-i", &p("evil.tar")])
        .contains("leaves the layer root"));
    assert!(lb.store_dir("tmp").is_empty());
}

#[test]
fn token_auth_with_a_token_service() {
    let lb = Lbox::new();
    let tokens = TokenServer::start(lb.dir.path(), "alice", "t0ken-pw");
    let realm = format!("http://127.0.0.1:{}/token", tokens.port);
    let reg = Registry::start(RegistryOpts {
        token: Some((realm, tokens.cert.clone())),
        ..Default::default()
    });
    let oci = umoci_image(lb.dir.path(), "behind a token\n");
    let img = format!("{}/tok/bb:1", reg.host());
    skopeo_push(&oci, &img, Some("alice:t0ken-pw"));

    let denied = lb.fails(&["pull", &img]);
    assert!(denied.contains("lbox login"), "{denied}");
    let mut login = lb
        .cmd()
        .args(["login", "-u", "alice", "--password-stdin", &reg.host()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    login
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"t0ken-pw\n")
        .expect("write");
    let login = login.wait_with_output().expect("wait");
    assert!(login.status.success(), "login: {}", text(&login.stderr));
    lb.ok(&["pull", &img]);
    assert_eq!(run_in_image(&lb, &img, &["/bin/cat", "/greeting"]), "behind a token\n");
    // Push to another repository with a pull+push token (and a mount from the first).
    let other = format!("{}/tok/copy:2", reg.host());
    lb.ok(&["tag", &img, &other]);
    let pushed = lb.run(&["push", &other]);
    assert!(pushed.status.success(), "push: {}", text(&pushed.stderr));
    sh(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--creds", "alice:t0ken-pw"])
        .arg(format!("docker://{other}")));
}

#[test]
fn a_platform_is_chosen_from_an_index() {
    let reg = Scripted::start();
    reg.set("/v2/", Route::ok("application/json", b"{}".to_vec()));
    let lb = Lbox::new();
    let mut descs = Vec::new();
    for arch in ["arm64", "amd64"] {
        let layer = tarball(&[entry("arch", b'0', arch.as_bytes(), "")]);
        let diff = digest(&layer);
        let config =
            format!(r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#);
        let (cd, ld) = (digest(config.as_bytes()), diff.clone());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        let md = digest(manifest.as_bytes());
        reg.set(
            &format!("/v2/multi/blobs/{cd}"),
            Route::ok("application/octet-stream", config.into_bytes()),
        );
        reg.set(
            &format!("/v2/multi/blobs/{ld}"),
            Route::ok("application/octet-stream", layer),
        );
        let variant = if arch == "arm64" { r#","variant":"v8""# } else { "" };
        descs.push(format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{md}","size":{},"platform":{{"architecture":"{arch}","os":"linux"{variant}}}}}"#,
            manifest.len()
        ));
        reg.set(
            &format!("/v2/multi/manifests/{md}"),
            Route::ok("application/vnd.oci.image.manifest.v1+json", manifest.into_bytes()),
        );
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        descs.join(",")
    );
    reg.set(
        "/v2/multi/manifests/latest",
        Route::ok("application/vnd.oci.image.index.v1+json", index.into_bytes()),
    );
    let img = format!("{}/multi", reg.host());

    lb.ok(&["pull", &img]);
    let inspect: serde_json::Value = serde_json::from_str(&lb.ok(&["image", "inspect", &img])).expect("json");
    assert_eq!(inspect[0]["Architecture"], "amd64", "the host's platform by default");
    lb.ok(&["pull", "--platform", "linux/arm64", &img]);
    let inspect: serde_json::Value = serde_json::from_str(&lb.ok(&["image", "inspect", &img])).expect("json");
    assert_eq!(inspect[0]["Architecture"], "arm64");
    let err = lb.fails(&["pull", "--platform", "linux/s390x", &img]);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64/v8") && err.contains("linux/amd64"),
        "{err}"
    );
    assert!(lb.fails(&["pull", "--platform", "s390x", &img]).contains("os/arch"));
}

#[test]
fn transient_registry_errors_are_retried() {
    let reg = Scripted::start();
    reg.set("/v2/", Route::ok("application/json", b"{}".to_vec()));
    let lb = Lbox::new();
    let layer = tarball(&[entry("file", b'0', b"eventually", "")]);
    let (img, ld) = scripted_image(&reg, "flaky", layer.clone(), None);
    let mut flaky = Route::ok("application/octet-stream", layer);
    flaky.fail_first = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(2));
    reg.set(&format!("/v2/flaky/blobs/{ld}"), flaky.clone());
    // On a terminal the pull draws progress bars (script gives it a pty).
    let pty = Command::new("script")
        .args(["-qec"])
        .arg(format!("{} pull {img}", common::lbox().display()))
        .arg("/dev/null")
        .env("LBOX_ROOT", lb.root())
        .env("HOME", lb.dir.path())
        .output()
        .expect("script");
    assert!(pty.status.success(), "{}", text(&pty.stderr));
    assert!(text(&pty.stdout).contains("Pull complete"), "{}", text(&pty.stdout));
    assert_eq!(
        flaky.fail_first.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "both failures were seen"
    );
    lb.ok(&["rmi", &img]);

    // import takes a URL too.
    let gz = lb.dir.path().join("url.tar.gz");
    std::fs::write(lb.dir.path().join("hello"), "from a URL\n").expect("write");
    sh(Command::new("tar")
        .arg("-C")
        .arg(lb.dir.path())
        .arg("-czf")
        .arg(&gz)
        .arg("hello"));
    reg.set(
        "/files/rootfs.tar.gz",
        Route::ok("application/gzip", std::fs::read(&gz).expect("read")),
    );
    lb.ok(&[
        "import",
        &format!("http://{}/files/rootfs.tar.gz", reg.host()),
        "from/url:1",
    ]);
    let merged = lb.ok(&["image", "mount", "from/url:1"]).trim().to_string();
    let content = std::fs::read_to_string(Path::new(&merged).join("hello"));
    lb.ok(&["image", "unmount", &merged]);
    assert_eq!(content.expect("hello"), "from a URL\n");
    // A registry that keeps failing is reported, not retried forever.
    let (img2, ld2) = scripted_image(&reg, "broken", tarball(&[entry("f", b'0', b"x", "")]), None);
    let mut broken = Route::ok("application/octet-stream", Vec::new());
    broken.fail_first = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(100));
    reg.set(&format!("/v2/broken/blobs/{ld2}"), broken);
    let err = lb.fails(&["pull", &img2]);
    assert!(err.contains("HTTP 503"), "{err}");
}

#[test]
fn image_commands_behave_like_dockers() {
    let lb = Lbox::new();
    let rootfs = lb.dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("busybox");
    let tarball = lb.dir.path().join("rootfs.tar.xz");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cJf")
        .arg(&tarball)
        .arg("."));
    let t = tarball.to_str().expect("utf8");

    // import (xz) with changes and a message; ID prefixes and names resolve alike.
    let id = lb
        .ok(&[
            "import",
            "-c",
            "ENV A=1",
            "-c",
            "WORKDIR /w",
            "-m",
            "base layer",
            t,
            "base:1",
        ])
        .trim()
        .to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    let short = &id[7..19];
    let by_prefix: serde_json::Value = serde_json::from_str(&lb.ok(&["image", "inspect", short])).expect("json");
    assert_eq!(by_prefix[0]["Id"], id.as_str());
    assert_eq!(by_prefix[0]["RepoTags"][0], "base:1");
    assert_eq!(by_prefix[0]["Config"]["Env"][0], "A=1");
    assert_eq!(by_prefix[0]["Config"]["WorkingDir"], "/w");
    let history = lb.ok(&["image", "history", "base:1"]);
    assert!(
        history.contains("lbox import") && history.contains("base layer") && history.starts_with("IMAGE"),
        "{history}"
    );

    // images: table, json, filters, digests.
    lb.ok(&["tag", "base:1", "docker.io/library/base:2"]);
    let table = lb.ok(&["images"]);
    let header = table.lines().next().expect("header");
    assert!(
        header.starts_with("REPOSITORY") && header.contains("IMAGE ID") && header.contains("SIZE"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 3, "one line per name: {table}");
    assert_eq!(lb.ok(&["images", "base:2"]).lines().count(), 2);
    assert_eq!(lb.ok(&["images", "-q"]).trim(), short);
    for line in lb.ok(&["images", "--format", "json"]).lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(v["Repository"], "base");
        assert_eq!(v["ID"], short);
    }
    assert!(lb.fails(&["images", "--format", "yaml"]).contains("unknown --format"));

    // rmi: by ID with two names needs -f; a name of a multi-tagged image only untags.
    assert!(lb.fails(&["rmi", short]).contains("must be forced"));
    assert_eq!(lb.ok(&["rmi", "base:2"]).trim(), "Untagged: base:2");
    // Errors say what to do.
    assert!(lb
        .fails(&["tag", "nosuch:1", "x:1"])
        .contains("not found locally; pull it with: lbox pull nosuch:1"));
    assert!(lb.fails(&["pull", "Bad/Name"]).contains("must be lowercase"));
    assert!(lb.fails(&["import", "/nonexistent.tar"]).contains("/nonexistent.tar"));

    // prune: dangling images only, then everything with -a.
    lb.ok(&["import", t]);
    assert_eq!(lb.ok(&["images", "-q"]).lines().count(), 2);
    let pruned = lb.ok(&["image", "prune", "-f"]);
    assert!(
        pruned.contains("Deleted: sha256:") && pruned.contains("Total reclaimed space"),
        "{pruned}"
    );
    assert_eq!(lb.ok(&["images", "-q"]).trim(), short, "the tagged image stays");
    lb.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(lb.ok(&["images", "-q"]), "");
    assert!(lb.store_dir("layers").is_empty() && lb.store_dir("blobs/sha256").is_empty());
}

#[test]
fn a_hard_link_into_a_lower_layer_survives_parallel_unpacking() {
    let reg = Scripted::start();
    reg.set("/v2/", Route::ok("application/json", b"{}".to_vec()));
    let lb = Lbox::new();
    let lower = tarball(&[entry("data", b'0', &[b'x'; 300_000], "")]);
    let upper = tarball(&[entry("link", b'1', b"", "data")]);
    let (dl, du) = (digest(&lower), digest(&upper));
    let config =
        format!(r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{dl}","{du}"]}}}}"#);
    let cd = digest(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{dl}","size":{}}},{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{du}","size":{}}}]}}"#,
        config.len(),
        lower.len(),
        upper.len()
    );
    reg.set(
        "/v2/links/manifests/latest",
        Route::ok("application/vnd.oci.image.manifest.v1+json", manifest.into_bytes()),
    );
    reg.set(
        &format!("/v2/links/blobs/{cd}"),
        Route::ok("application/octet-stream", config.into_bytes()),
    );
    // The lower layer arrives slowly, so the upper one is unpacked first and must wait for it.
    let mut slow = Route::ok("application/octet-stream", lower);
    slow.delay = Some(std::time::Duration::from_millis(100));
    reg.set(&format!("/v2/links/blobs/{dl}"), slow);
    reg.set(
        &format!("/v2/links/blobs/{du}"),
        Route::ok("application/octet-stream", upper),
    );
    let img = format!("{}/links", reg.host());
    lb.ok(&["pull", &img]);
    let merged = lb.ok(&["image", "mount", &img]).trim().to_string();
    let link = std::fs::read(Path::new(&merged).join("link"));
    lb.ok(&["image", "unmount", &merged]);
    assert_eq!(link.expect("the link's content").len(), 300_000);
}
