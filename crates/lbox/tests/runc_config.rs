mod common;

// lbox-runc end to end, one config.json item at a time: every test runs a busybox container and
// checks the item's real effect, seen from inside the container or from the host.

use std::io::{IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{bundle, mounts_under, stderr, stdout, Bundle};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A bundle whose process is `sh -c SCRIPT`.
fn sh(name: &str, script: &str) -> Bundle {
    bundle(name, &["sh", "-c", script])
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// `run` in the foreground; the container must succeed. Returns its stdout.
fn run_ok(b: &Bundle) -> String {
    let out = b.run();
    assert!(
        out.status.success(),
        "{}: run failed ({}): stdout {:?} stderr {}",
        b.id,
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// The command failed and left neither state nor cgroup behind. Returns its stderr.
fn assert_failed_cleanly(b: &Bundle, out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}: expected a failure, got stdout {:?}",
        b.id,
        stdout(out)
    );
    assert!(!b.root().join(&b.id).exists(), "{}: state dir left behind", b.id);
    assert!(
        b.cgroup_dirs().is_empty(),
        "{}: cgroups left: {:?}",
        b.id,
        b.cgroup_dirs()
    );
    stderr(out)
}

/// Append to a JSON array, making it first if the field is absent.
fn push(arr: &mut Value, v: Value) {
    if arr.is_null() {
        *arr = json!([]);
    }
    arr.as_array_mut().expect("a JSON array").push(v);
}

fn bind_mount(source: &Path, destination: &str, options: &[&str]) -> Value {
    json!({"destination": destination, "type": "bind", "source": source, "options": options})
}

fn tmpfs_mount(destination: &str, options: &[&str]) -> Value {
    json!({"destination": destination, "type": "tmpfs", "source": "tmpfs", "options": options})
}

fn mkdir_mode(p: &Path, mode: u32) {
    std::fs::create_dir_all(p).expect("mkdir");
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// An executable /bin/sh script.
fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
}

static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `lbox runtime --root <the bundle's root> ARGS` with stdin from `input`, stdout and stderr through
/// files (a detached container inherits them), and a last chance to `tweak` the command.
fn runc_custom(b: &Bundle, args: &[&str], input: Option<&str>, tweak: impl FnOnce(&mut Command)) -> Output {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (out_path, err_path) = (
        b.tmp.path().join(format!("c-out.{n}")),
        b.tmp.path().join(format!("c-err.{n}")),
    );
    let mut cmd = Command::new(common::lbox());
    cmd.args(["runtime", "--root", path_str(&b.root())])
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(std::fs::File::create(&out_path).expect("out file"))
        .stderr(std::fs::File::create(&err_path).expect("err file"));
    tweak(&mut cmd);
    let mut child = cmd.spawn().expect("spawn lbox");
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).expect("write stdin");
    }
    let status = child.wait().expect("wait lbox");
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

fn run_detached(b: &Bundle) {
    let out = b.runc(&["run", "-d", "--bundle", path_str(&b.dir()), &b.id]);
    assert!(out.status.success(), "run -d: {}", stderr(&out));
}

fn wait_stopped(b: &Bundle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.status() != "stopped" {
        assert!(Instant::now() < deadline, "{} did not stop", b.id);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A field of /proc/self/status as printed by `grep FIELD /proc/self/status`.
fn status_field<'a>(text: &'a str, field: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {text:?}"))
        .trim()
}

fn cap_eff(text: &str) -> u64 {
    u64::from_str_radix(status_field(text, "CapEff"), 16).expect("hex CapEff")
}

// ---------------------------------------------------------------------------------------------
// 1. hostname, domainname
// ---------------------------------------------------------------------------------------------

#[test]
fn hostname_and_domainname() {
    let b = sh("uts-names", "hostname; cat /proc/sys/kernel/domainname");
    b.edit(|s| {
        s["hostname"] = json!("box-one");
        s["domainname"] = json!("example.test");
    });
    assert_eq!(run_ok(&b), "box-one\nexample.test\n");
}

// ---------------------------------------------------------------------------------------------
// 2. process: env, user, umask, cwd
// ---------------------------------------------------------------------------------------------

#[test]
fn process_env_user_groups_and_umask() {
    let b = sh(
        "proc-user",
        r#"echo "$GREETING"; echo "$HOME"; id -u; id -g; id -G; umask; touch /dev/shm/f; stat -c %a /dev/shm/f"#,
    );
    b.edit(|s| {
        s["process"]["env"] = json!(["PATH=/bin", "GREETING=hello world"]);
        s["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o027});
    });
    let out = run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..4], ["hello world", "/home/user", "1000", "1000"], "{out}");
    let mut groups: Vec<&str> = lines[4].split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(groups, ["10", "1000", "20"], "{out}");
    assert_eq!(lines[5..], ["0027", "640"], "{out}");
}

fn check_missing_cwd_is_created(name: &str, uid: u32, readonly_root: bool) {
    let b = sh(name, "pwd");
    b.edit(|s| {
        s["process"]["cwd"] = json!("/work/deep");
        s["process"]["user"] = json!({"uid": uid, "gid": uid});
        s["root"]["readonly"] = json!(readonly_root);
    });
    assert_eq!(run_ok(&b), "/work/deep\n");
    assert!(b.rootfs().join("work/deep").is_dir(), "made inside the rootfs");
}

/// The init locks itself down (user, cwd) while the runtime records it ready: a failure there
/// must reach the user as itself, not as a broken pipe when `start` writes to a gone init.
#[test]
fn cwd_the_user_cannot_enter_fails_with_the_reason() {
    for i in 0..5 {
        let b = sh(&format!("cwd-denied-{i}"), "pwd");
        mkdir_mode(&b.rootfs().join("secret"), 0o700);
        b.edit(|s| {
            s["process"]["cwd"] = json!("/secret");
            s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        });
        let out = b.run();
        let err = assert_failed_cleanly(&b, &out);
        assert!(
            err.contains("chdir to /secret") && err.contains("EACCES"),
            "run {i}: {err}"
        );
    }
}

#[test]
fn missing_cwd_is_created() {
    check_missing_cwd_is_created("cwd-root", 0, false);
}

#[test]
fn missing_cwd_is_created_for_a_user_on_a_read_only_root() {
    // runc makes the cwd while it builds the rootfs, as root and before / turns read-only.
    check_missing_cwd_is_created("cwd-user", 1000, true);
}

// ---------------------------------------------------------------------------------------------
// 3. rlimits
// ---------------------------------------------------------------------------------------------

fn set_nofile(b: &Bundle, soft: u64, hard: u64) {
    b.edit(|s| s["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}]));
}

#[test]
fn rlimit_nofile_is_applied() {
    let b = sh("rlimit", "ulimit -n; ulimit -Hn");
    set_nofile(&b, 512, 1024);
    assert_eq!(run_ok(&b), "512\n1024\n");
}

/// A RLIMIT_NOFILE hard limit the runtime cannot set: above ours without CAP_SYS_RESOURCE (as
/// here), above fs.nr_open with it.
fn nofile_too_high() -> u64 {
    const CAP_SYS_RESOURCE: u64 = 1 << 24;
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    if cap_eff(&status) & CAP_SYS_RESOURCE == 0 {
        let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).expect("getrlimit");
        return hard + 1;
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").expect("nr_open");
    nr_open.trim().parse::<u64>().expect("nr_open") + 1
}

#[test]
fn rlimit_above_the_hosts_hard_limit_fails_clearly() {
    let b = sh("rlimit-high", "echo ran");
    set_nofile(&b, 512, nofile_too_high());
    let out = b.run();
    let err = assert_failed_cleanly(&b, &out);
    let lower = err.to_lowercase();
    assert!(lower.contains("rlimit") && lower.contains("nofile"), "{err}");
    assert!(!stdout(&out).contains("ran"));
}

// ---------------------------------------------------------------------------------------------
// 4. capabilities, noNewPrivileges
// ---------------------------------------------------------------------------------------------

const DEFAULT_CAPS: u64 = (1 << 29) | (1 << 10) | (1 << 5); // AUDIT_WRITE, NET_BIND_SERVICE, KILL
const CAP_SYS_ADMIN: u64 = 1 << 21;
const CAPS_SCRIPT: &str = "grep CapEff /proc/self/status; mount -t tmpfs t /tmp 2>/dev/null && echo mounted; true";

#[test]
fn default_capabilities() {
    let b = sh("caps-default", CAPS_SCRIPT);
    let out = run_ok(&b);
    assert_eq!(cap_eff(&out), DEFAULT_CAPS, "{out}");
    assert!(!out.contains("mounted"), "mount needs CAP_SYS_ADMIN: {out}");
}

#[test]
fn added_capability_is_effective() {
    let b = sh("caps-admin", CAPS_SCRIPT);
    b.edit(|s| {
        for set in ["bounding", "effective", "permitted", "inheritable", "ambient"] {
            push(&mut s["process"]["capabilities"][set], json!("CAP_SYS_ADMIN"));
        }
    });
    let out = run_ok(&b);
    assert_eq!(cap_eff(&out) & CAP_SYS_ADMIN, CAP_SYS_ADMIN, "{out}");
    assert_eq!(cap_eff(&out) & DEFAULT_CAPS, DEFAULT_CAPS, "{out}");
    assert!(out.contains("mounted"), "{out}");
}

#[test]
fn no_new_privileges() {
    for (nnp, want) in [(true, "1"), (false, "0")] {
        let b = sh(&format!("nnp-{nnp}"), "grep NoNewPrivs /proc/self/status");
        b.edit(|s| s["process"]["noNewPrivileges"] = json!(nnp));
        let out = run_ok(&b);
        assert_eq!(status_field(&out, "NoNewPrivs"), want, "noNewPrivileges={nnp}");
    }
}

// ---------------------------------------------------------------------------------------------
// 5. root.readonly
// ---------------------------------------------------------------------------------------------

#[test]
fn read_only_root() {
    for readonly in [true, false] {
        let b = sh(&format!("root-ro-{readonly}"), "touch /x");
        b.edit(|s| s["root"]["readonly"] = json!(readonly));
        let out = b.run();
        assert_eq!(out.status.success(), !readonly, "readonly={readonly}: {}", stderr(&out));
        assert_eq!(b.rootfs().join("x").exists(), !readonly);
        if readonly {
            assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 6. maskedPaths, readonlyPaths
// ---------------------------------------------------------------------------------------------

#[test]
fn masked_paths() {
    let b = sh(
        "masked",
        "wc -c < /proc/timer_list; wc -c < /proc/keys; wc -c < /proc/version; ls -A /sys/firmware | wc -l; \
         stat -f -c %T /sys/firmware; head -c 5 /proc/cpuinfo | wc -c",
    );
    // The default spec masks /proc/timer_list, /proc/keys and /sys/firmware (all non-empty on the
    // host; this kernel has no /proc/kcore); /proc/version is an extra one.
    b.edit(|s| push(&mut s["linux"]["maskedPaths"], json!("/proc/version")));
    let out = run_ok(&b);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        ["0", "0", "0", "0", "tmpfs", "5"],
        "(the last is unmasked /proc/cpuinfo) {out}"
    );
}

#[test]
fn readonly_paths() {
    let script = "echo changed > /proc/sys/kernel/domainname && cat /proc/sys/kernel/domainname";
    // The default spec lists /proc/sys.
    let b = sh("ro-paths", script);
    let out = b.run();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
    // Without it the same write works (in the container's own UTS namespace).
    let b = sh("ro-paths-none", script);
    b.edit(|s| s["linux"]["readonlyPaths"] = json!([]));
    assert_eq!(run_ok(&b), "changed\n");
}

// ---------------------------------------------------------------------------------------------
// 7. mounts
// ---------------------------------------------------------------------------------------------

#[test]
fn bind_mount_read_only_and_read_write() {
    for ro in [true, false] {
        let b = sh(&format!("bind-ro-{ro}"), "cat /mnt/host/hello.txt; touch /mnt/host/new");
        let host = b.tmp.path().join("host-dir");
        mkdir_mode(&host, 0o755);
        std::fs::write(host.join("hello.txt"), "from the host\n").expect("write");
        let opts: &[&str] = if ro { &["rbind", "ro"] } else { &["rbind"] };
        b.edit(|s| push(&mut s["mounts"], bind_mount(&host, "/mnt/host", opts)));
        let out = b.run();
        assert_eq!(stdout(&out), "from the host\n", "{}", stderr(&out));
        assert_eq!(out.status.success(), !ro, "ro={ro}: {}", stderr(&out));
        assert_eq!(host.join("new").exists(), !ro);
        if ro {
            assert!(stderr(&out).contains("Read-only file system"), "{}", stderr(&out));
        }
        assert_eq!(mounts_under(&host), 0);
    }
}

#[test]
fn tmpfs_mount_with_mode_and_size() {
    let b = sh(
        "tmpfs-opts",
        "stat -c %a /scratch; stat -f -c '%T %b %S' /scratch; dd if=/dev/zero of=/scratch/big bs=1024 count=2048",
    );
    b.edit(|s| {
        push(
            &mut s["mounts"],
            tmpfs_mount("/scratch", &["nosuid", "mode=1770", "size=1m"]),
        )
    });
    let out = b.run();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1770", "{text} {}", stderr(&out));
    let fs: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(fs[0], "tmpfs");
    let bytes = fs[1].parse::<u64>().expect("blocks") * fs[2].parse::<u64>().expect("block size");
    assert_eq!(bytes, 1 << 20, "{text}");
    assert!(!out.status.success(), "2 MiB do not fit in 1 MiB");
    assert!(stderr(&out).contains("No space left on device"), "{}", stderr(&out));
}

#[test]
fn mount_through_a_symlink_stays_inside_the_rootfs() {
    let b = sh("symlink-mount", "cat /evil/sub/payload");
    // rootfs/evil -> <host dir>: resolved on the host it would make <host dir>/sub and mount there.
    let host_target = b.tmp.path().join("host-target");
    let source = b.tmp.path().join("source");
    mkdir_mode(&host_target, 0o755);
    mkdir_mode(&source, 0o755);
    std::fs::write(source.join("payload"), "mounted in the rootfs\n").expect("write");
    std::os::unix::fs::symlink(&host_target, b.rootfs().join("evil")).expect("symlink");
    b.edit(|s| push(&mut s["mounts"], bind_mount(&source, "/evil/sub", &["rbind"])));
    assert_eq!(run_ok(&b), "mounted in the rootfs\n");
    let left: Vec<_> = std::fs::read_dir(&host_target).expect("read host dir").collect();
    assert!(left.is_empty(), "the host directory was written to: {left:?}");
    assert_eq!(mounts_under(&host_target), 0);
    // The symlink was followed inside the rootfs instead.
    let inside = b.rootfs().join(host_target.strip_prefix("/").expect("absolute"));
    assert!(inside.join("sub").is_dir(), "{} missing", inside.display());
}

// ---------------------------------------------------------------------------------------------
// 8. devices
// ---------------------------------------------------------------------------------------------

#[test]
fn devices_and_dev_links() {
    let b = sh(
        "devices",
        "stat -c '%n %t %T %a %u %g' /dev/mydev /dev/fuse /dev/null /dev/zero /dev/full /dev/random /dev/urandom \
         /dev/tty; for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; \
         test -d /dev/pts && test -c /dev/pts/ptmx && echo pts; head -c 4 /dev/zero > /dev/null && echo usable",
    );
    b.edit(|s| {
        s["linux"]["devices"] = json!([
            {"path": "/dev/mydev", "type": "c", "major": 42, "minor": 7, "fileMode": 0o640, "uid": 1000, "gid": 1000},
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0},
        ])
    });
    let out = run_ok(&b);
    let want = [
        "/dev/mydev 2a 7 640 1000 1000",
        "/dev/fuse a e5 666 0 0",
        "/dev/null 1 3 666 0 0",
        "/dev/zero 1 5 666 0 0",
        "/dev/full 1 7 666 0 0",
        "/dev/random 1 8 666 0 0",
        "/dev/urandom 1 9 666 0 0",
        "/dev/tty 5 0 666 0 0",
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
        "pts/ptmx",
        "pts",
        "usable",
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), want, "{out}");
}

// ---------------------------------------------------------------------------------------------
// 9. sysctl
// ---------------------------------------------------------------------------------------------

#[test]
fn sysctls_apply_to_the_container_only() {
    let knobs = ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/ip_default_ttl"];
    let read_host = || knobs.map(|k| std::fs::read_to_string(k).expect("read sysctl"));
    let before = read_host();
    let b = sh("sysctl", &format!("cat {}", knobs.join(" ")));
    b.edit(|s| s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "net.ipv4.ip_default_ttl": "42"}));
    assert_eq!(run_ok(&b), "1\n42\n");
    assert_eq!(read_host(), before, "the host's values changed");
}

// ---------------------------------------------------------------------------------------------
// 10. namespaces
// ---------------------------------------------------------------------------------------------

/// "net:[4026531840]" -> 4026531840
fn ns_inode(link: &str) -> u64 {
    let l = link.trim();
    l[l.find('[').expect("ns link") + 1..l.len() - 1]
        .parse()
        .expect("inode")
}

fn host_ns_inode(kind: &str) -> u64 {
    std::fs::metadata(format!("/proc/self/ns/{kind}"))
        .expect("host ns")
        .ino()
}

const NS_KINDS: [&str; 5] = ["pid", "uts", "ipc", "net", "mnt"];

/// Prints the container's namespace links, in NS_KINDS order.
const NS_SCRIPT: &str = "for n in pid uts ipc net mnt; do readlink /proc/self/ns/$n; done";

/// The namespace inodes in NS_SCRIPT's output lines.
fn inside_ns_inodes(lines: &[&str]) -> Vec<u64> {
    lines.iter().map(|l| ns_inode(l)).collect()
}

#[test]
fn new_namespaces() {
    let b = sh(
        "namespaces",
        &format!("echo $$; {NS_SCRIPT}; ls /sys/class/net; cat /sys/class/net/lo/flags"),
    );
    let out = run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the process is pid 1 of its pid namespace");
    for (kind, ino) in NS_KINDS.iter().zip(inside_ns_inodes(&lines[1..6])) {
        assert_ne!(ino, host_ns_inode(kind), "{kind} namespace is the host's");
    }
    assert_eq!(lines[6], "lo", "only lo in a new network namespace: {out}");
    let flags = u32::from_str_radix(lines[7].trim_start_matches("0x"), 16).expect("flags");
    assert_eq!(flags & 1, 1, "lo is up (IFF_UP): {out}");
}

#[test]
fn omitted_namespaces_are_the_hosts() {
    let b = sh("shared-ns", NS_SCRIPT);
    b.edit(|s| {
        s["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "mount"}]);
        s["hostname"] = Value::Null;
    });
    let out = run_ok(&b);
    let inodes = inside_ns_inodes(&out.lines().collect::<Vec<_>>());
    for (kind, ino) in NS_KINDS.iter().zip(inodes) {
        let shared = matches!(*kind, "uts" | "ipc" | "net");
        assert_eq!(ino == host_ns_inode(kind), shared, "{kind}");
    }
}

/// A named network namespace (`ip netns add`), deleted on drop.
struct NetNs(String);

impl NetNs {
    fn new(name: String) -> Self {
        let _ = Command::new("ip").args(["netns", "delete", &name]).output();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip netns add: {}", stderr(&out));
        NetNs(name)
    }

    fn path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "delete", &self.0]).output();
    }
}

#[test]
fn join_a_network_namespace_by_path() {
    let ns = NetNs::new(format!("lbox-it-{}", std::process::id()));
    let b = sh("netns-join", "readlink /proc/self/ns/net; ls /sys/class/net");
    let path = ns.path();
    b.edit(|s| {
        for n in s["linux"]["namespaces"].as_array_mut().expect("namespaces") {
            if n["type"] == "network" {
                n["path"] = json!(path);
            }
        }
    });
    let out = run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    let want = std::fs::metadata(&path).expect("netns").ino();
    assert_eq!(ns_inode(lines[0]), want, "{out}");
    assert_eq!(lines[1..], ["lo"]);
}

// ---------------------------------------------------------------------------------------------
// 11. user namespace
// ---------------------------------------------------------------------------------------------

fn chown_tree(p: &Path, id: u32) {
    std::os::unix::fs::lchown(p, Some(id), Some(id)).expect("lchown");
    if p.is_dir() && !p.is_symlink() {
        for e in std::fs::read_dir(p).expect("read_dir") {
            chown_tree(&e.expect("entry").path(), id);
        }
    }
}

const USERNS_ROOT: u32 = 100000;

/// A bundle with a user namespace mapping container 0-65535 to host 100000-165535.
fn userns_bundle(name: &str, script: &str) -> Bundle {
    let b = sh(name, script);
    // The mapped root must reach the rootfs through the 0700 tempdir, and own the rootfs (as with
    // any image used in a user namespace) to make its mount points.
    for p in [b.tmp.path().to_path_buf(), b.dir()] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    chown_tree(&b.rootfs(), USERNS_ROOT);
    b.edit(|s| {
        push(&mut s["linux"]["namespaces"], json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": USERNS_ROOT, "size": 65536}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
    });
    b
}

#[test]
fn user_namespace_maps_root() {
    let b = userns_bundle(
        "userns",
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch /scratch/f /hostdir/f; stat -c %u:%g /scratch/f",
    );
    let hostdir = b.tmp.path().join("shared");
    mkdir_mode(&hostdir, 0o777);
    b.edit(|s| {
        push(&mut s["mounts"], tmpfs_mount("/scratch", &["mode=755"]));
        push(&mut s["mounts"], bind_mount(&hostdir, "/hostdir", &["rbind"]));
    });
    let out = run_ok(&b);
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(lines, ["0 100000 65536", "0 100000 65536", "0", "0", "0:0"], "{out}");
    let owner = std::fs::metadata(hostdir.join("f")).expect("file made by the container");
    assert_eq!(
        (owner.uid(), owner.gid()),
        (USERNS_ROOT, USERNS_ROOT),
        "owned by the mapped root on the host"
    );
}

/// `path` bind mounted on itself with nosuid,nodev (as container storage often mounts images);
/// unmounted on drop.
struct NosuidNodev(PathBuf);

impl NosuidNodev {
    fn new(path: &Path) -> Self {
        use nix::mount::{mount, MsFlags};
        mount(Some(path), path, None::<&str>, MsFlags::MS_BIND, None::<&str>).expect("bind");
        let guard = NosuidNodev(path.to_path_buf());
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(None::<&str>, path, None::<&str>, flags, None::<&str>).expect("remount nosuid,nodev");
        guard
    }
}

impl Drop for NosuidNodev {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn user_namespace_read_only_root_on_a_nosuid_nodev_mount() {
    let b = userns_bundle("userns-nosuid", "id -u");
    // Dropped before `b`: the mount goes before the bundle's files.
    let _mount = NosuidNodev::new(&b.rootfs());
    assert_eq!(run_ok(&b), "0\n");
}

// ---------------------------------------------------------------------------------------------
// 12. seccomp
// ---------------------------------------------------------------------------------------------

fn set_seccomp(b: &Bundle, rules: Value) {
    b.edit(|s| s["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
}

fn errno_rule(names: &[&str]) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1})
}

const MKDIR_SCRIPT: &str = "touch /dev/shm/file && echo touched; mkdir /dev/shm/dir";

fn assert_mkdir_blocked(b: &Bundle) {
    let out = b.run();
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "touched\n", "{}", stderr(&out));
    assert!(stderr(&out).contains("Operation not permitted"), "{}", stderr(&out));
}

#[test]
fn seccomp_errno_rule() {
    let b = sh("seccomp-mkdir", MKDIR_SCRIPT);
    set_seccomp(&b, json!([errno_rule(&["mkdir", "mkdirat"])]));
    assert_mkdir_blocked(&b);
}

#[test]
fn seccomp_rule_with_argument_condition() {
    // socket(2) is refused only when its first argument is the blocked address family.
    for (family, blocked) in [(libc::AF_INET, true), (libc::AF_INET6, false)] {
        let b = sh(&format!("seccomp-args-{family}"), "nc 127.0.0.1 1");
        let mut rule = errno_rule(&["socket"]);
        rule["args"] = json!([{"index": 0, "value": family, "op": "SCMP_CMP_EQ"}]);
        set_seccomp(&b, json!([rule]));
        let out = b.run();
        assert!(!out.status.success(), "nothing listens on port 1");
        let want = if blocked {
            "Operation not permitted"
        } else {
            "Connection refused"
        };
        assert!(stderr(&out).contains(want), "family {family}: {}", stderr(&out));
    }
}

/// The init waits for `start` on a socket: a profile that refuses the socket calls makes it load
/// the filter only after the wait, right before the exec (it would otherwise lock itself out).
#[test]
fn seccomp_profile_refusing_the_inits_socket_calls_still_starts() {
    let b = sh("seccomp-sockets", MKDIR_SCRIPT);
    set_seccomp(&b, json!([errno_rule(&["recvfrom", "sendto", "mkdir", "mkdirat"])]));
    assert_mkdir_blocked(&b);
}

#[test]
fn seccomp_unknown_syscall_is_ignored() {
    let b = sh("seccomp-unknown", MKDIR_SCRIPT);
    set_seccomp(&b, json!([errno_rule(&["lbox_no_such_syscall", "mkdir", "mkdirat"])]));
    assert_mkdir_blocked(&b);
}

#[test]
fn seccomp_invalid_action_fails_create() {
    let b = sh("seccomp-bad", "true");
    set_seccomp(&b, json!([{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]));
    let out = b.create();
    let err = assert_failed_cleanly(&b, &out);
    assert!(err.contains("linux.seccomp"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 13. hooks
// ---------------------------------------------------------------------------------------------

const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A directory for hook scripts, bind mounted at the same path in the container (startContainer
/// hooks are resolved and run inside it).
fn hook_dir(b: &Bundle) -> PathBuf {
    let dir = b.tmp.path().join("hooks");
    mkdir_mode(&dir, 0o755);
    b.edit(|s| push(&mut s["mounts"], bind_mount(&dir, path_str(&dir), &["rbind"])));
    dir
}

fn hook(script: &Path, args: &[&str], timeout: Option<u32>) -> Value {
    let mut argv = vec![path_str(script)];
    argv.extend_from_slice(args);
    let mut h = json!({"path": script, "args": argv, "env": ["PATH=/usr/bin:/bin"]});
    if let Some(t) = timeout {
        h["timeout"] = json!(t);
    }
    h
}

/// Hooks of every kind that append "KIND STATE-JSON" lines to dir/log.
fn logging_hooks(b: &Bundle) -> PathBuf {
    let dir = hook_dir(b);
    let log = dir.join("log");
    let script = dir.join("log.sh");
    write_script(
        &script,
        // One write per hook: hooks of different kinds may run at the same time.
        &format!(r#"state=$(cat); echo "$1 $state" >> {}"#, log.display()),
    );
    b.edit(|s| {
        for kind in HOOK_KINDS {
            s["hooks"][kind] = json!([hook(&script, &[kind], None)]);
        }
    });
    log
}

fn read_hook_log(log: &Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(log)
        .expect("hook log")
        .lines()
        .map(|l| {
            let (kind, state) = l.split_once(' ').expect("KIND JSON");
            (kind.to_string(), serde_json::from_str(state).expect("state JSON"))
        })
        .collect()
}

#[test]
fn hooks_run_in_order() {
    let b = sh("hooks-order", "echo ran");
    let log = logging_hooks(&b);
    assert_eq!(run_ok(&b), "ran\n");
    let entries = read_hook_log(&log);
    let kinds: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, HOOK_KINDS);
    for (kind, state) in &entries {
        assert_eq!(state["id"], b.id.as_str(), "{kind}: {state}");
    }
}

#[test]
fn hooks_get_the_containers_host_pid() {
    let b = sh("hooks-pid", "true");
    let log = logging_hooks(&b);
    let pid_file = b.tmp.path().join("pid");
    let out = b.runc(&[
        "create",
        "--bundle",
        path_str(&b.dir()),
        "--pid-file",
        path_str(&pid_file),
        &b.id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .parse()
        .expect("pid");
    assert!(pid > 1);
    assert!(b.runc(&["start", &b.id]).status.success());
    wait_stopped(&b);
    assert!(b.runc(&["delete", &b.id]).status.success());
    let entries = read_hook_log(&log);
    assert_eq!(entries.len(), HOOK_KINDS.len());
    for (kind, state) in entries.iter().filter(|(k, _)| k != "poststop") {
        assert_eq!(state["pid"], pid, "{kind}: {state}");
        assert_eq!(state["id"], b.id.as_str(), "{kind}: {state}");
    }
}

#[test]
fn start_container_hooks_finish_before_poststart_hooks() {
    // startContainer runs before the program is exec'd, poststart after it was: even a slow
    // startContainer hook must be done before any poststart hook starts.
    let b = sh("hooks-slow", "true");
    let log = logging_hooks(&b);
    let slow = log.with_file_name("slow.sh");
    write_script(
        &slow,
        &format!("sleep 1; echo startContainer-done >> {}", log.display()),
    );
    b.edit(|s| push(&mut s["hooks"]["startContainer"], hook(&slow, &[], None)));
    assert!(b.create().status.success());
    assert!(b.runc(&["start", &b.id]).status.success());
    wait_stopped(&b);
    let text = std::fs::read_to_string(&log).expect("log");
    let done = text.find("startContainer-done").expect("slow hook ran");
    let poststart = text.find("poststart ").expect("poststart ran");
    assert!(
        done < poststart,
        "poststart ran before startContainer finished:\n{text}"
    );
}

/// A `kind` hook that exits 1 makes `cmd` (create or run) fail, naming the hook, leaving nothing.
fn check_failing_hook(kind: &str, cmd: &str) {
    let b = sh(&format!("hook-fail-{}", kind.to_lowercase()), "echo should-not-run");
    let script = hook_dir(&b).join("fail.sh");
    write_script(&script, "exit 1");
    b.edit(|s| s["hooks"][kind] = json!([hook(&script, &[], None)]));
    let out = b.runc(&[cmd, "--bundle", path_str(&b.dir()), &b.id]);
    let err = assert_failed_cleanly(&b, &out);
    assert!(err.contains(kind) && err.contains("fail.sh"), "{kind}: {err}");
    assert!(!stdout(&out).contains("should-not-run"), "{kind}");
}

#[test]
fn failing_hook_fails_and_leaves_nothing() {
    check_failing_hook("createRuntime", "create");
    check_failing_hook("createContainer", "create");
    check_failing_hook("startContainer", "run");
}

#[test]
fn failing_prestart_hook_is_named_prestart() {
    check_failing_hook("prestart", "create");
}

#[test]
fn hook_timeout_kills_the_hook() {
    let b = sh("hook-timeout", "true");
    let script = hook_dir(&b).join("slow.sh");
    write_script(&script, "exec sleep 10");
    b.edit(|s| s["hooks"]["createRuntime"] = json!([hook(&script, &[], Some(1))]));
    let t = Instant::now();
    let out = b.create();
    let took = t.elapsed();
    let err = assert_failed_cleanly(&b, &out);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(err.contains("timed out") && err.contains("createRuntime"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// 14. cgroup resources
// ---------------------------------------------------------------------------------------------

/// A file of the container's cgroup in the v1 hierarchy that carries `controller`, read on the host.
fn host_cgroup_file(b: &Bundle, controller: &str, file: &str) -> String {
    let dir = b
        .cgroup_dirs()
        .into_iter()
        .find(|d| {
            let h = d.strip_prefix("/sys/fs/cgroup").ok().and_then(|r| r.iter().next());
            h.is_some_and(|h| h.to_string_lossy().split(',').any(|c| c == controller))
        })
        .unwrap_or_else(|| panic!("no {controller} cgroup for {}", b.id));
    std::fs::read_to_string(dir.join(file))
        .expect("cgroup file")
        .trim()
        .to_string()
}

#[test]
fn cgroup_resources_are_applied() {
    let b = sh(
        "cg-res",
        "cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes pids/pids.max cpu/cpu.shares cpu/cpu.cfs_quota_us \
         cpu/cpu.cfs_period_us cpuset/cpuset.cpus; grep Cpus_allowed_list /proc/self/status",
    );
    b.edit(|s| {
        let r = &mut s["linux"]["resources"];
        r["memory"] = json!({"limit": 64 << 20});
        r["pids"] = json!({"limit": 20});
        r["cpu"] = json!({"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"});
    });
    let out = run_ok(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..6], ["67108864", "20", "512", "50000", "100000", "0"], "{out}");
    assert_eq!(status_field(lines[6], "Cpus_allowed_list"), "0");
}

#[test]
fn pids_limit_stops_a_fork_loop() {
    // The inner shell dies at its first failed fork; its sleeps stay (orphans of pid 1) until the
    // container ends. `read` is a builtin: no fork needed to count.
    let b = sh(
        "cg-pids",
        "sh -c 'for i in $(seq 30); do sleep 30 & done'; read n < /sys/fs/cgroup/pids/pids.current; echo $n",
    );
    b.edit(|s| s["linux"]["resources"]["pids"] = json!({"limit": 10}));
    let out = b.run();
    let n: u32 = stdout(&out).trim().parse().unwrap_or_else(|_| panic!("{out:?}"));
    assert!(n <= 10, "{n} pids");
    assert!(stderr(&out).contains("fork"), "{}", stderr(&out));
}

#[test]
fn update_changes_a_running_containers_cgroup() {
    let b = bundle("cg-update", &["sleep", "1000"]);
    run_detached(&b);
    let out = b.runc(&["update", "--memory", "32m", "--pids-limit", "10", &b.id]);
    assert!(out.status.success(), "update: {}", stderr(&out));
    assert_eq!(
        host_cgroup_file(&b, "memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(host_cgroup_file(&b, "pids", "pids.max"), "10");

    let json = r#"{"memory": {"limit": 50331648}, "cpu": {"shares": 256, "quota": 20000, "period": 100000}, "pids": {"limit": 15}}"#;
    let out = runc_custom(&b, &["update", "--resources", "-", &b.id], Some(json), |_| {});
    assert!(out.status.success(), "update -r -: {}", stderr(&out));
    let got = [
        ("memory", "memory.limit_in_bytes", "50331648"),
        ("cpu", "cpu.shares", "256"),
        ("cpu", "cpu.cfs_quota_us", "20000"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("pids", "pids.max", "15"),
    ];
    for (ctrl, file, want) in got {
        assert_eq!(host_cgroup_file(&b, ctrl, file), want, "{file}");
    }
}

// ---------------------------------------------------------------------------------------------
// 15. file descriptors (CVE-2024-21626)
// ---------------------------------------------------------------------------------------------

#[test]
fn only_stdio_reaches_the_container() {
    let b = sh("fds", "ls /proc/self/fd");
    // 3 is ls's own directory fd.
    assert_eq!(run_ok(&b), "0\n1\n2\n3\n");
}

#[test]
fn preserve_fds_passes_fd_3() {
    let b = sh("fds-keep", "ls /proc/self/fd; cat <&3");
    let file = b.tmp.path().join("fd3.txt");
    std::fs::write(&file, "kept open\n").expect("write");
    let f = std::fs::File::open(&file).expect("open");
    let fd = f.as_raw_fd();
    let dir = b.dir();
    let args = ["run", "--preserve-fds", "1", "--bundle", path_str(&dir), &b.id];
    let out = runc_custom(&b, &args, None, |cmd| {
        // Safety: only dup2/fcntl between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let r = if fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(fd, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    assert!(out.status.success(), "{}", stderr(&out));
    // 4 is ls's directory fd now.
    assert_eq!(stdout(&out), "0\n1\n2\n3\n4\nkept open\n");
}

// ---------------------------------------------------------------------------------------------
// 16. console socket
// ---------------------------------------------------------------------------------------------

/// `create` with FLAG (--console-socket, --pidfd-socket) naming a fresh socket of ours; returns
/// the fd the runtime sent over it.
fn create_receiving_fd(b: &Bundle, flag: &str) -> OwnedFd {
    let sock = b.tmp.path().join(format!("{}.sock", flag.trim_start_matches('-')));
    let listener = UnixListener::bind(&sock).expect("bind");
    let receiver = std::thread::spawn(move || receive_fd_and_data(&listener).0);
    let out = b.runc(&["create", "--bundle", path_str(&b.dir()), flag, path_str(&sock), &b.id]);
    assert!(out.status.success(), "create {flag}: {}", stderr(&out));
    receiver.join().expect("fd receiver")
}

/// Accept one connection; receive the fd sent with SCM_RIGHTS and the message that carried it.
fn receive_fd_and_data(listener: &UnixListener) -> (OwnedFd, Vec<u8>) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (stream, _) = listener.accept().expect("accept");
    let mut buf = vec![0u8; 64 * 1024];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty()).expect("recvmsg");
    let n = msg.bytes;
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // Safety: the kernel just gave us this fd.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    (fd.expect("no fd in the message"), buf[..n].to_vec())
}

/// Everything the terminal's other side writes until it is closed (EIO) or `limit` passes.
fn read_pty(master: &OwnedFd, limit: Duration) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + limit;
    let mut text = Vec::new();
    while Instant::now() < deadline {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).expect("poll") == 0 {
            continue;
        }
        let mut buf = [0u8; 1024];
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[test]
fn console_socket_gets_the_terminal() {
    let b = sh("console", "tty; echo through-the-pty");
    b.edit(|s| s["process"]["terminal"] = json!(true));
    let master = create_receiving_fd(&b, "--console-socket");
    assert!(b.runc(&["start", &b.id]).status.success());
    let text = read_pty(&master, Duration::from_secs(10));
    assert!(
        text.contains("/dev/pts/0") && text.contains("through-the-pty"),
        "{text:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 17. --no-pivot
// ---------------------------------------------------------------------------------------------

#[test]
fn no_pivot_run() {
    let b = sh("no-pivot", "echo no-pivot; ls /");
    let out = b.runc(&["run", "--no-pivot", "--bundle", path_str(&b.dir()), &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("no-pivot\n"), "{text}");
    let root: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        root,
        ["bin", "dev", "etc", "home", "proc", "root", "sys", "tmp"],
        "the rootfs is /"
    );
}

#[test]
fn personality_and_io_priority() {
    let b = sh(
        "pers",
        "uname -m; cat /proc/self/personality 2>/dev/null; ionice 2>/dev/null || true",
    );
    b.edit(|s| {
        s["linux"]["personality"] = json!({"domain": "LINUX32"});
        s["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    });
    let out = run_ok(&b);
    // The LINUX32 domain makes uname report a 32-bit machine.
    assert!(
        out.lines()
            .next()
            .is_some_and(|m| m == "i686" || m == "armv8l" || m == "armv7l"),
        "{out}"
    );
    let b = sh("iop", "echo ok");
    b.edit(|s| s["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9}));
    let err = assert_failed_cleanly(&b, &b.run());
    assert!(err.contains("ioPriority"), "{err}");
}

#[test]
fn security_labels_are_ignored_with_a_warning() {
    // Neither AppArmor nor SELinux runs on the test hosts: the labels must not stop the container.
    let b = sh("labels", "echo ran");
    b.edit(|s| {
        s["process"]["apparmorProfile"] = json!("lbox-test-profile");
        s["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
    });
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ran\n");
    let err = stderr(&out);
    if !Path::new("/sys/module/apparmor/parameters/enabled").exists() {
        assert!(err.contains("apparmorProfile ignored"), "{err}");
    }
    assert!(err.contains("SELinux labels ignored"), "{err}");
}

#[test]
fn rootfs_propagation_is_applied() {
    let b = sh("prop", "awk '$5 == \"/\"' /proc/self/mountinfo");
    b.edit(|s| s["linux"]["rootfsPropagation"] = json!("shared"));
    let out = run_ok(&b);
    assert!(out.contains("shared:"), "root mount not shared: {out}");
    let b = sh("prop2", "awk '$5 == \"/\"' /proc/self/mountinfo");
    b.edit(|s| s["linux"]["rootfsPropagation"] = json!("private"));
    let out = run_ok(&b);
    assert!(
        !out.contains("shared:") && !out.contains("master:"),
        "root mount not private: {out}"
    );
    let b = sh("prop3", "true");
    b.edit(|s| s["linux"]["rootfsPropagation"] = json!("sideways"));
    let err = assert_failed_cleanly(&b, &b.run());
    assert!(err.contains("linux.rootfsPropagation"), "{err}");
}

#[test]
fn events_reports_stats_and_oom_kills() {
    // The memory hog starts only once `events` is seen running (it reports OOMs from then on).
    let b = sh(
        "oom",
        "while [ ! -e /go ]; do sleep 0.05; done; tail /dev/zero; sleep 1000",
    );
    b.edit(|s| s["linux"]["resources"]["memory"] = json!({"limit": 16 << 20, "swap": 16 << 20}));
    let out = b.runc(&["run", "-d", "--bundle", path_str(&b.dir()), &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = b.tmp.path().join("events.log");
    let mut events = Command::new(common::lbox())
        .args([
            "runtime",
            "--root",
            path_str(&b.root()),
            "events",
            "--interval",
            "500ms",
            &b.id,
        ])
        .stdout(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("events");
    common::eventually(10, "the first stats from events", || {
        std::fs::read_to_string(&log).unwrap_or_default().contains("\"stats\"")
    });
    std::fs::write(b.rootfs().join("go"), "").expect("go");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains("\"oom\"") {
        std::thread::sleep(Duration::from_millis(100));
        text = std::fs::read_to_string(&log).unwrap_or_default();
    }
    let _ = events.kill();
    let _ = events.wait();
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(
        lines
            .iter()
            .any(|e| e["type"] == "stats" && e["data"]["memory"]["usage"]["limit"] == 16 << 20),
        "{text}"
    );
    assert!(
        lines.iter().any(|e| e["type"] == "oom" && e["id"] == b.id.as_str()),
        "no oom event: {text}"
    );
}

#[test]
fn seccomp_notify_hands_the_listener_to_the_agent() {
    // The agent decides: every mkdir gets EROFS, which no filesystem here would say.
    let b = sh("notify", "mkdir /dev/shm/x; echo rc=$?");
    let sock = b.tmp.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let id = b.id.clone();
    b.edit(|s| {
        s["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": sock,
            "listenerMetadata": "agent-test",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let agent = std::thread::spawn(move || {
        let (fd, data) = receive_fd_and_data(&listener);
        let msg: Value = serde_json::from_slice(&data).expect("ContainerProcessState JSON");
        let mut answered = 0;
        while let Ok(req) = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()) {
            let resp =
                libseccomp::ScmpNotifResp::new_error(req.id, -libc::EROFS, libseccomp::ScmpNotifRespFlags::empty());
            if resp.respond(fd.as_raw_fd()).is_ok() {
                answered += 1;
            }
        }
        (msg, answered)
    });
    let out = b.run();
    let (msg, answered) = agent.join().expect("agent thread");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Read-only file system") || stdout(&out).contains("rc=1"),
        "{}",
        stderr(&out)
    );
    assert!(answered >= 1, "the agent answered nothing");
    assert_eq!(msg["fds"], json!(["seccompFd"]));
    assert_eq!(msg["metadata"], "agent-test");
    assert_eq!(msg["state"]["id"], id.as_str());
    assert!(msg["pid"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn seccomp_notify_without_a_listener_is_refused() {
    let b = sh("notify2", "true");
    b.edit(|s| {
        s["linux"]["seccomp"] =
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
    });
    let err = assert_failed_cleanly(&b, &b.run());
    assert!(err.contains("listenerPath"), "{err}");
}

#[test]
fn pidfd_socket_gets_the_inits_pidfd() {
    let b = bundle("pidfd", &["sleep", "1000"]);
    let pidfd = create_receiving_fd(&b, "--pidfd-socket");
    assert_eq!(b.status(), "created");
    // Killing through the pidfd stops exactly this container.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, 0, 0) };
    assert_eq!(r, 0, "pidfd_send_signal: {}", std::io::Error::last_os_error());
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.status() != "stopped" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(b.status(), "stopped");
}
