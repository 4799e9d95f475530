//! lbox-runc end to end: the lifecycle commands, their output formats and their errors.

mod common;

use common::{bundle, mounts_under, stderr, stdout};
use serde_json::Value;

#[test]
fn run_prints_and_returns_the_exit_code() {
    let b = bundle("run-exit", &["sh", "-c", "echo hello; exit 3"]);
    let out = b.run();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    // run deletes what it made.
    assert!(b.cgroup_dirs().is_empty(), "cgroups left: {:?}", b.cgroup_dirs());
    assert!(!b.root().join(&b.id).exists());
    assert_eq!(mounts_under(&b.rootfs()), 0);
}

#[test]
fn argv0_lbox_runc_is_the_runtime() {
    let b = bundle("argv0", &["true"]);
    let link = b.tmp.path().join("lbox-runc");
    std::os::unix::fs::symlink(common::lbox(), &link).unwrap();
    let out = std::process::Command::new(&link).arg("--version").output().unwrap();
    assert!(stdout(&out).starts_with("lbox-runc version "), "{}", stdout(&out));
    let out = std::process::Command::new(&link)
        .args(["--root", b.root().to_str().unwrap(), "list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "null");
}

#[test]
fn full_lifecycle() {
    let b = bundle("life", &["sleep", "1000"]);
    let pidfile = b.tmp.path().join("pid");
    let out = b.runc(&[
        "create",
        "--bundle",
        b.dir().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &b.id,
    ]);
    assert!(out.status.success(), "create: {}", stderr(&out));
    assert_eq!(b.status(), "created");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .parse()
        .expect("pid file has no newline");
    let state: Value = serde_json::from_slice(&b.runc(&["state", &b.id]).stdout).unwrap();
    assert_eq!(state["pid"], pid);
    assert_eq!(state["id"], b.id.as_str());
    assert!(state["bundle"].as_str().unwrap().ends_with("/bundle"));

    // Listed, with the same status.
    let list: Value = serde_json::from_slice(&b.runc(&["list", "--format", "json"]).stdout).unwrap();
    assert_eq!(list[0]["status"], "created");

    assert!(b.runc(&["start", &b.id]).status.success());
    assert_eq!(b.status(), "running");
    let again = b.runc(&["start", &b.id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("running"), "{}", stderr(&again));

    let ps: Vec<i32> = serde_json::from_slice(&b.runc(&["ps", "--format", "json", &b.id]).stdout).unwrap();
    assert_eq!(ps, vec![pid]);
    let table = stdout(&b.runc(&["ps", &b.id]));
    assert!(table.contains("PID") && table.contains("sleep 1000"), "{table}");

    assert!(b.runc(&["pause", &b.id]).status.success());
    assert_eq!(b.status(), "paused");
    let ex = b.runc(&["exec", &b.id, "true"]);
    assert!(
        !ex.status.success() && stderr(&ex).contains("paused"),
        "{}",
        stderr(&ex)
    );
    assert!(b.runc(&["resume", &b.id]).status.success());
    assert_eq!(b.status(), "running");
    assert!(!b.runc(&["resume", &b.id]).status.success());

    let ex = b.runc(&[
        "exec",
        "--env",
        "X=42",
        "--cwd",
        "/tmp",
        &b.id,
        "sh",
        "-c",
        "echo $X $(pwd) $$",
    ]);
    assert!(ex.status.success(), "{}", stderr(&ex));
    let words: Vec<String> = stdout(&ex).split_whitespace().map(String::from).collect();
    assert_eq!(&words[..2], ["42", "/tmp"]);
    assert_ne!(words[2], "1", "exec'd process is not the init");
    assert_eq!(b.runc(&["exec", &b.id, "sh", "-c", "exit 7"]).status.code(), Some(7));

    let ev: Value = serde_json::from_slice(&b.runc(&["events", "--stats", &b.id]).stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 1);

    let del = b.runc(&["delete", &b.id]);
    assert!(
        !del.status.success() && stderr(&del).contains("not stopped"),
        "{}",
        stderr(&del)
    );

    assert!(b.runc(&["kill", &b.id, "KILL"]).status.success());
    for _ in 0..200 {
        if b.status() == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(b.status(), "stopped");
    let k = b.runc(&["kill", &b.id, "TERM"]);
    assert!(
        !k.status.success() && stderr(&k).contains("not running"),
        "{}",
        stderr(&k)
    );
    assert!(
        b.runc(&["kill", "--all", &b.id, "9"]).status.success(),
        "kill --all on stopped is fine"
    );

    assert!(b.runc(&["delete", &b.id]).status.success());
    let st = b.runc(&["state", &b.id]);
    assert!(!st.status.success() && stderr(&st).contains("does not exist"));
    assert!(b.cgroup_dirs().is_empty(), "cgroups left: {:?}", b.cgroup_dirs());
    assert!(!b.root().join(&b.id).exists());
}

#[test]
fn run_detached_and_delete_force() {
    let b = bundle("detach", &["sleep", "1000"]);
    let out = b.runc(&["run", "-d", "--bundle", b.dir().to_str().unwrap(), &b.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(b.status(), "running");
    assert!(b.runc(&["delete", "--force", &b.id]).status.success());
    assert!(!b.root().join(&b.id).exists());
    assert!(b.cgroup_dirs().is_empty());
    // delete --force of something that does not exist succeeds, as runc's does.
    assert!(b.runc(&["delete", "--force", "never-was"]).status.success());
}

#[test]
fn exec_with_process_json_and_detach() {
    let b = bundle("execp", &["sleep", "1000"]);
    assert!(b
        .runc(&["run", "-d", "--bundle", b.dir().to_str().unwrap(), &b.id])
        .status
        .success());
    let pj = b.tmp.path().join("process.json");
    std::fs::write(
        &pj,
        r#"{"args":["sh","-c","echo $A > /dev/shm/out; id -u >> /dev/shm/out"],"env":["A=from-json","PATH=/bin"],"cwd":"/","user":{"uid":1000,"gid":1000}}"#,
    )
    .unwrap();
    let pidf = b.tmp.path().join("exec.pid");
    let out = b.runc(&[
        "exec",
        "--process",
        pj.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pidf.to_str().unwrap(),
        &b.id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&pidf).unwrap().parse::<i32>().is_ok());
    // The detached process runs in its own time: wait for both of its lines.
    let mut last = String::new();
    common::eventually(10, "the detached exec's output", || {
        last = stdout(&b.runc(&["exec", &b.id, "cat", "/dev/shm/out"]));
        last.lines().count() >= 2
    });
    assert_eq!(last, "from-json\n1000\n");
    // A bad process.json names its field.
    std::fs::write(&pj, r#"{"args":["true"],"cwd":"/","user":{"uid":"x"}}"#).unwrap();
    let bad = b.runc(&["exec", "--process", pj.to_str().unwrap(), &b.id]);
    assert_eq!(bad.status.code(), Some(255));
    assert!(stderr(&bad).contains("user.uid"), "{}", stderr(&bad));
    let missing = b.runc(&["exec", &b.id, "no-such-program"]);
    assert!(
        stderr(&missing).contains("executable file not found"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    // Malformed config: the error names the field.
    let b = bundle("badcfg", &["true"]);
    b.edit(|s| s["process"]["user"]["uid"] = Value::String("root".into()));
    let out = b.run();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("process.user.uid"), "{}", stderr(&out));
    assert!(!b.root().join(&b.id).exists());

    // Missing bundle.
    let out = b.runc(&["create", "--bundle", "/nonexistent/bundle", "x1"]);
    assert!(
        !out.status.success() && stderr(&out).contains("/nonexistent/bundle"),
        "{}",
        stderr(&out)
    );

    // Missing rootfs.
    let b = bundle("norootfs", &["true"]);
    std::fs::remove_dir_all(b.rootfs()).unwrap();
    let out = b.create();
    assert!(
        !out.status.success() && stderr(&out).contains("root.path"),
        "{}",
        stderr(&out)
    );
    assert!(!b.root().join(&b.id).exists());

    // Unknown id, invalid id.
    let out = b.runc(&["start", "nope"]);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    let out = b.runc(&["state", "../etc"]);
    assert!(
        !out.status.success() && stderr(&out).contains("invalid container id"),
        "{}",
        stderr(&out)
    );

    // Unknown capability, relative cwd, unknown namespace, missing args.
    for (field, edit) in [
        (
            "process.capabilities.bounding",
            Box::new(|s: &mut Value| s["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_NOPE"]))
                as Box<dyn Fn(&mut Value)>,
        ),
        (
            "process.cwd",
            Box::new(|s: &mut Value| s["process"]["cwd"] = Value::String("tmp".into())),
        ),
        (
            "linux.namespaces",
            Box::new(|s: &mut Value| s["linux"]["namespaces"] = serde_json::json!([{"type": "bogus"}])),
        ),
        (
            "process.args",
            Box::new(|s: &mut Value| s["process"]["args"] = serde_json::json!([])),
        ),
    ] {
        let b = bundle("badfield", &["true"]);
        b.edit(|s| edit(s));
        let out = b.create();
        assert!(!out.status.success(), "{field} accepted");
        assert!(stderr(&out).contains(field), "{field}: {}", stderr(&out));
        assert!(!b.root().join(&b.id).exists());
    }
}

#[test]
fn duplicate_id_is_refused() {
    let b = bundle("dup", &["sleep", "1000"]);
    assert!(b.create().status.success());
    let out = b.create();
    assert!(
        !out.status.success() && stderr(&out).contains("already exists"),
        "{}",
        stderr(&out)
    );
    assert_eq!(b.status(), "created", "the first container is untouched");
}

#[test]
fn failing_program_is_reported_at_create() {
    let b = bundle("noprog", &["/bin/definitely-missing"]);
    let out = b.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such file or directory"), "{}", stderr(&out));
    assert!(!b.root().join(&b.id).exists());
    assert!(b.cgroup_dirs().is_empty());
}

#[test]
fn spec_refuses_to_overwrite() {
    let b = bundle("spec", &["true"]);
    let out = b.runc(&["spec", "--bundle", b.dir().to_str().unwrap()]);
    assert!(!out.status.success() && stderr(&out).contains("exists"));
    let feat: Value = serde_json::from_slice(&b.runc(&["features"]).stdout).unwrap();
    assert_eq!(feat["linux"]["cgroup"]["v1"], true);
    let sys = b.runc(&["--systemd-cgroup", "list"]);
    assert!(!sys.status.success() && stderr(&sys).contains("not supported"));
}

#[test]
fn proc_self_exe_never_reaches_the_host_binary() {
    // CVE-2019-5736: a program whose interpreter is /proc/self/exe would run the runtime's own
    // binary (and could then overwrite it through /proc/PID/exe). Through the sealed trampoline it
    // runs that instead, which only fails.
    let b = bundle("cve5736", &["/evil"]);
    std::fs::write(b.rootfs().join("evil"), "#!/proc/self/exe --version\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.rootfs().join("evil"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = b.run();
    assert!(
        !stdout(&out).contains("version"),
        "the host binary ran: {}",
        stdout(&out)
    );
    assert_ne!(out.status.code(), Some(0));
    // And a normal program sees itself, not the runtime, as /proc/self/exe.
    let b = bundle("cve5736b", &["readlink", "/proc/self/exe"]);
    assert_eq!(stdout(&b.run()), "/bin/busybox\n");
}

#[test]
fn foreground_run_with_a_terminal_relays_the_pty() {
    // runc's default spec asks for a terminal: a foreground run then holds the pty itself.
    let b = bundle(
        "tty",
        &["sh", "-c", "tty; echo size $(stty size); read x; echo got:$x; exit 4"],
    );
    b.edit(|s| s["process"]["terminal"] = Value::Bool(true));
    let cmd = format!(
        "stty cols 100 rows 30; {} runtime --root {} run --bundle {} {}; echo rc=$?",
        common::lbox().display(),
        b.root().display(),
        b.dir().display(),
        b.id
    );
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    use std::io::Write;
    child.stdin.as_mut().unwrap().write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    for want in ["/dev/pts/0", "size 30 100", "got:hello", "rc=4"] {
        assert!(text.contains(want), "missing {want:?} in {text:?}");
    }
    // Detached with a terminal needs a console socket.
    let out = b.runc(&["run", "-d", "--bundle", b.dir().to_str().unwrap(), &b.id]);
    assert!(
        !out.status.success() && stderr(&out).contains("console-socket"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn delete_waits_for_a_create_in_progress() {
    // A createRuntime hook keeps `create` busy for a while; a `delete --force` that arrives then
    // must wait for it (not pull the state from under it), and then remove everything.
    let b = bundle("lockwait", &["sleep", "1000"]);
    let hook = b.tmp.path().join("slow.sh");
    std::fs::write(&hook, "#!/bin/sh\nsleep 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    b.edit(|s| s["hooks"] = serde_json::json!({"createRuntime": [{"path": hook}]}));
    let root = b.root();
    let (id, dir) = (b.id.clone(), b.dir());
    let creator = std::thread::spawn(move || {
        std::process::Command::new(common::lbox())
            .args([
                "runtime",
                "--root",
                root.to_str().unwrap(),
                "create",
                "--bundle",
                dir.to_str().unwrap(),
                &id,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    });
    // The state directory appears when `create` claims the id, well before its hook ends.
    common::eventually(3, "create to be under way", || b.root().join(&b.id).exists());
    let del = b.runc(&["delete", "--force", &b.id]);
    assert!(del.status.success(), "{}", stderr(&del));
    assert!(creator.join().unwrap().success(), "create was disturbed by the delete");
    assert!(!b.root().join(&b.id).exists());
    assert!(b.cgroup_dirs().is_empty(), "cgroups left: {:?}", b.cgroup_dirs());
}

#[test]
fn concurrent_runs_all_succeed_and_clean_up() {
    let handles: Vec<_> = (0..10)
        .map(|i| {
            std::thread::spawn(move || {
                let b = bundle(&format!("par{i}"), &["sh", "-c", "echo ok"]);
                let out = b.run();
                let left = b.cgroup_dirs();
                (out.status.code(), stdout(&out), stderr(&out), left)
            })
        })
        .collect();
    for h in handles {
        let (code, out, err, left) = h.join().unwrap();
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out, "ok\n");
        assert!(left.is_empty(), "cgroups left: {left:?}");
    }
}

#[test]
fn default_cgroup_is_below_ours_and_removed_with_its_parent() {
    let b = bundle("defcg", &["cat", "/proc/self/cgroup"]);
    b.edit(|s| {
        s["linux"].as_object_mut().unwrap().remove("cgroupsPath");
    });
    let out = b.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_pids = own
        .lines()
        .find(|l| l.contains(":pids:"))
        .map(|l| l.rsplit(':').next().unwrap().trim_end_matches('/').to_string());
    let inside = stdout(&out);
    if let Some(own) = own_pids {
        assert!(inside.contains(&format!(":pids:{own}/lbox/{}", b.id)), "{inside}");
        let parent = std::path::Path::new("/sys/fs/cgroup/pids")
            .join(own.trim_start_matches('/'))
            .join("lbox");
        assert!(!parent.exists(), "{} left behind", parent.display());
    } else {
        assert!(inside.contains(&format!("/lbox/{}", b.id)), "{inside}");
    }
}

#[test]
fn a_failure_after_setup_leaves_no_init_behind() {
    // The pid file cannot be written: create fails after the init is set up, and must take the
    // init, its cgroup and its state with it.
    let b = bundle("latefail", &["sleep", "1000"]);
    let out = b.runc(&[
        "create",
        "--bundle",
        b.dir().to_str().unwrap(),
        "--pid-file",
        "/nonexistent/dir/pid",
        &b.id,
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("pid file"), "{}", stderr(&out));
    assert!(!b.root().join(&b.id).exists(), "state left behind");
    assert!(
        b.cgroup_dirs().is_empty(),
        "cgroups left (the init is still alive?): {:?}",
        b.cgroup_dirs()
    );
}
