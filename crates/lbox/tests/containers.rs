//! Containers end to end: `lbox run/create/start/stop/kill/restart/rm/ps/logs/inspect/wait/
//! pause/unpause/rename` driven as a user would, on a busybox image made offline. Every test
//! has its own engine root and checks that it leaves no container, mount or cgroup behind.

mod common;

use common::engine::Engine;
use common::{stderr, stdout};

#[test]
fn foreground_run_output_exit_codes_and_errors() {
    let e = Engine::new();
    let o = e.lbox(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout(&o), "out\n");
    assert_eq!(stderr(&o), "err\n");
    // Docker's codes: 127 command not found, 126 not executable, 125 the engine's own failures.
    let err = e.fails(&["run", "--rm", "busybox", "nosuchcmd"], 127);
    assert!(err.contains("nosuchcmd") && err.contains("not found"), "{err}");
    e.fails(&["run", "--rm", "busybox", "/etc/passwd"], 126);
    let err = e.fails(&["run", "--rm", "--pull", "never", "nothere:v2", "true"], 125);
    assert!(err.contains("nothere:v2") && err.contains("lbox pull"), "{err}");
    let err = e.fails(&["run", "--rm", "--memory", "12q", "busybox", "true"], 125);
    assert!(err.contains("--memory") && err.contains("12q"), "{err}");
    let err = e.fails(&["run", "--rm", "-v", "/no/such/dir:/x", "busybox", "true"], 125);
    assert!(err.contains("/no/such/dir") && err.contains("does not exist"), "{err}");
    e.fails(&["run", "--rm", "--restart", "sometimes", "busybox", "true"], 125);
    e.fails(&["run", "--rm", "--cpus", "lots", "busybox", "true"], 125);
    e.fails(&["run", "--rm", "--network", "bridge0", "busybox", "true"], 125);
    e.fails(&["run", "--rm", "--cap-add", "FLY", "busybox", "true"], 125);
    let o = e.lbox(&["run", "--rm", "--bogus-flag", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    // A failed start without --rm leaves a created container that says why.
    let o = e.lbox(&["run", "--name", "broken", "busybox", "nosuchcmd"]);
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(
        e.inspect("broken", "{{.State.Status}} {{.State.ExitCode}}"),
        "created 127"
    );
    assert!(e.inspect("broken", "{{.State.Error}}").contains("nosuchcmd"));
    e.ok(&["rm", "broken"]);
    assert_eq!(
        e.all_ids(),
        Vec::<String>::new(),
        "--rm containers and removed ones are gone"
    );
    e.assert_clean();
}

#[test]
fn detached_lifecycle_by_name_and_id_prefix() {
    let e = Engine::new();
    let id = e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "echo started; trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(id.len(), 64, "run -d prints the full ID: {id}");
    e.eventually(10, "log line", || e.ok(&["logs", "web"]).contains("started"));
    let ps = e.ok(&["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&id[..12]) && ps.contains("Up "),
        "{ps}"
    );
    assert_eq!(e.inspect(&id[..8], "{{.Name}} {{.State.Status}}"), "/web running");
    let err = e.fails(&["run", "-d", "--name", "web", "busybox", "true"], 125);
    assert!(err.contains("already in use") && err.contains("web"), "{err}");
    let err = e.fails(&["rm", "web"], 1);
    assert!(err.contains("stop it first") || err.contains("rm -f"), "{err}");
    assert_eq!(e.ok(&["stop", "-t", "5", "web"]), "web");
    assert_eq!(e.inspect("web", "{{.State.Status}} {{.State.ExitCode}}"), "exited 0");
    assert!(e.ok(&["logs", "web"]).contains("bye"));
    assert!(
        e.ok(&["ps"]).lines().count() == 1,
        "ps without -a hides exited containers"
    );
    assert!(e.ok(&["ps", "-a"]).contains("Exited (0)"));
    // Start again; restart; kill with a signal; wait reports the code.
    e.ok(&["start", &id[..12]]);
    assert_eq!(e.inspect("web", "{{.State.Status}}"), "running");
    e.ok(&["restart", "-t", "5", "web"]);
    assert_eq!(e.inspect("web", "{{.State.Status}} {{.RestartCount}}"), "running 0");
    e.ok(&["kill", "-s", "KILL", "web"]);
    assert_eq!(e.ok(&["wait", "web"]), "137");
    e.fails(&["kill", "web"], 1);
    e.ok(&["rename", "web", "web2"]);
    e.fails(&["inspect", "--type", "container", "web"], 1);
    e.ok(&["rm", "web2"]);
    let err = e.fails(&["stop", "web2"], 1);
    assert!(err.contains("no such container"), "{err}");
    e.assert_clean();
}

#[test]
fn rm_waits_for_the_owner_of_a_container_being_started() {
    let e = Engine::new();
    let id = e.ok(&["create", "--name", "starting", "busybox", "true"]);
    // Stand in for a monitor that is starting it: hold its owner lock, as the monitor does.
    let lock_path = e.path("run").join("owners").join(format!("{id}.lock"));
    std::fs::create_dir_all(lock_path.parent().expect("parent")).expect("owners dir");
    let lock = std::fs::File::create(&lock_path).expect("lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
    let mut rm = e.cmd(&["rm", "starting"]).spawn().expect("rm");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        rm.try_wait().expect("try_wait").is_none(),
        "rm did not wait for the owner"
    );
    assert_eq!(e.inspect("starting", "{{.State.Status}}"), "created");
    drop(lock);
    let st = rm.wait().expect("wait rm");
    assert!(st.success(), "rm failed once the owner let go");
    e.fails(&["inspect", "--type", "container", "starting"], 1);
    e.assert_clean();
}

/// What refers to the namespace `link` (as readlink shows it, "mnt:[N]"): processes in it and
/// open descriptors of it, as "PID:ns" or "PID:fd".
fn holders_of(link: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = p.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for ns in ["mnt", "ipc"] {
            if std::fs::read_link(p.path().join("ns").join(ns)).is_ok_and(|l| l.to_string_lossy() == link) {
                out.push(format!("{name}:ns"));
            }
        }
        for fd in std::fs::read_dir(p.path().join("fd")).into_iter().flatten().flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == link) {
                out.push(format!("{name}:fd"));
            }
        }
    }
    out
}

#[test]
fn a_removed_containers_namespaces_are_held_by_its_owner_then_let_go() {
    use std::io::BufRead;
    let e = Engine::new();
    let mut run = e
        .cmd(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; readlink /proc/self/ns/ipc; exec sleep 30",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let mut lines = std::io::BufReader::new(run.stdout.take().expect("stdout")).lines();
    let mnt = lines.next().expect("mnt line").expect("read");
    let ipc = lines.next().expect("ipc line").expect("read");
    assert!(mnt.starts_with("mnt:[") && ipc.starts_with("ipc:["), "{mnt} {ipc}");
    // The foreground `run` holds both open while the container runs (its exit then skips their
    // teardown, which the background remover does).
    let owner = format!("{}:fd", run.id());
    assert!(holders_of(&mnt).contains(&owner), "{mnt}: {:?}", holders_of(&mnt));
    assert!(holders_of(&ipc).contains(&owner), "{ipc}: {:?}", holders_of(&ipc));
    let id = e.ok(&["ps", "-q", "--no-trunc"]);
    e.ok(&["kill", &id]);
    let st = run.wait().expect("wait run");
    assert_eq!(st.code(), Some(137));
    e.eventually(10, "the container's namespaces are let go", || {
        holders_of(&mnt).is_empty() && holders_of(&ipc).is_empty()
    });
    e.assert_clean();
}

#[test]
fn ambiguous_prefix_lists_the_matches() {
    let e = Engine::new();
    for i in 0..20 {
        e.ok(&["create", "--name", &format!("c{i}"), "busybox", "true"]);
    }
    let ids = e.all_ids();
    let first = |id: &String| id[..1].to_string();
    let shared = ids
        .iter()
        .map(first)
        .find(|p| ids.iter().filter(|i| i.starts_with(p.as_str())).count() >= 2)
        .expect("20 IDs share a first hex digit");
    let err = e.fails(&["inspect", "--type", "container", &shared], 125);
    assert!(err.contains("ambiguous"), "{err}");
    let n = ids.iter().filter(|i| i.starts_with(&shared)).count().min(10);
    assert_eq!(err.matches(" (c").count(), n, "every match is listed: {err}");
    e.assert_clean();
}

#[test]
fn image_config_and_run_flags_apply_as_docker_applies_them() {
    let e = Engine::new();
    let tar = e.path("busybox.tar");
    e.ok(&[
        "import",
        "-q",
        tar.to_str().expect("utf8"),
        "cfg:1",
        "--change",
        "ENV GREETING=hello PATH=/bin",
        "--change",
        "WORKDIR /srv/app",
        "--change",
        "USER user",
        "--change",
        "ENTRYPOINT [\"/bin/sh\", \"-c\"]",
        "--change",
        "CMD [\"echo default $GREETING\"]",
    ]);
    assert_eq!(e.ok(&["run", "--rm", "cfg:1"]), "default hello");
    assert_eq!(
        e.ok(&["run", "--rm", "cfg:1", "pwd; id -u; id -G"]),
        "/srv/app\n1000\n1000 10"
    );
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "-e",
            "GREETING=hi",
            "-w",
            "/tmp",
            "-u",
            "0:0",
            "cfg:1",
            "echo $GREETING; pwd; id -u"
        ]),
        "hi\n/tmp\n0"
    );
    std::fs::write(e.path("env"), "# comment\nA=1\nB=two words\n").expect("env file");
    let ef = e.path("env");
    assert_eq!(
        e.ok(&[
            "run",
            "--rm",
            "--env-file",
            ef.to_str().expect("utf8"),
            "cfg:1",
            "echo $A/$B"
        ]),
        "1/two words"
    );
    // --entrypoint replaces the image's and drops its Cmd.
    assert_eq!(e.ok(&["run", "--rm", "--entrypoint", "echo", "cfg:1", "x", "y"]), "x y");
    let host = e.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box1",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; echo $HOSTNAME",
    ]);
    assert_eq!(host, "box1\nbox1\nbox1");
    let short = e.ok(&["run", "-d", "--name", "hn", "busybox", "hostname"]);
    assert_eq!(e.ok(&["wait", "hn"]), "0");
    assert_eq!(
        e.ok(&["logs", "hn"]),
        &short[..12],
        "the default hostname is the short ID"
    );
    let hosts = e.ok(&["run", "--rm", "busybox", "cat", "/etc/hosts"]);
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    e.ok(&["rm", "hn"]);
    e.assert_clean();
}

#[test]
fn isolation_holds_by_default_and_privileged_lifts_it() {
    let e = Engine::new();
    let script = "grep -E '^(CapEff|Seccomp):' /proc/self/status; \
                  echo procs=$(ls -d /proc/[0-9]* | wc -l); \
                  mkdir -p /m; mount -t tmpfs t /m 2>/dev/null && echo mount=yes || echo mount=no; \
                  (echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo sysctl=yes || echo sysctl=no; \
                  ls /dev | tr '\\n' ' '; echo; \
                  cat /proc/kcore >/dev/null 2>&1 && echo kcore=yes || echo kcore=no; \
                  grep -q . /proc/modules 2>/dev/null; \
                  insmod /nonexistent.ko 2>&1 | head -1";
    let out = e.ok(&["run", "--rm", "busybox", "sh", "-c", script]);
    assert!(
        out.contains("CapEff:\t00000000a80425fb"),
        "Docker's default capability set: {out}"
    );
    assert!(out.contains("Seccomp:\t2"), "seccomp filter on: {out}");
    let procs: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .and_then(|n| n.parse().ok())
        .expect("process count");
    assert!(procs <= 5, "only the container's own processes are visible: {out}");
    assert!(
        out.contains("mount=no") && out.contains("sysctl=no") && out.contains("kcore=no"),
        "{out}"
    );
    let devs = out.lines().find(|l| l.contains("null")).unwrap_or("");
    for d in devs.split_whitespace() {
        assert!(
            [
                "console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
                "stdout", "tty", "urandom", "zero"
            ]
            .contains(&d),
            "unexpected device {d} in a default container: {devs}"
        );
    }
    let out = e.ok(&["run", "--rm", "--privileged", "busybox", "sh", "-c", script]);
    assert!(
        out.contains("Seccomp:\t0") && out.contains("mount=yes") && out.contains("sysctl=yes"),
        "{out}"
    );
    assert!(!out.contains("CapEff:\t00000000a80425fb"), "{out}");
    let host_dev = std::fs::read_dir("/dev")
        .expect("/dev")
        .flatten()
        .any(|d| d.file_name() == "kmsg");
    if host_dev {
        assert!(out.contains("kmsg"), "--privileged shows the host's devices: {out}");
    }
    // Capability and security flags.
    let out = e.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "-E",
        "CapEff|NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(
        out.contains("CapEff:\t0000000000000001") && out.contains("NoNewPrivs:\t1"),
        "{out}"
    );
    let out = e.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert!(out.contains("Seccomp:\t0"), "{out}");
    e.assert_clean();
}

#[test]
fn volumes_binds_tmpfs_and_read_only() {
    let e = Engine::new();
    let host = e.path("hostdir");
    std::fs::create_dir_all(&host).expect("mkdir");
    let bind = format!("{}:/data", host.display());
    e.ok(&["run", "--rm", "-v", &bind, "busybox", "sh", "-c", "echo hi > /data/f"]);
    assert_eq!(
        std::fs::read_to_string(host.join("f")).expect("written through the bind"),
        "hi\n"
    );
    let ro = format!("{bind}:ro");
    let o = e.lbox(&["run", "--rm", "-v", &ro, "busybox", "sh", "-c", "echo no > /data/g"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!host.join("g").exists());
    let m = format!("type=bind,source={},target=/m,readonly", host.display());
    assert_eq!(e.ok(&["run", "--rm", "--mount", &m, "busybox", "cat", "/m/f"]), "hi");
    // A named volume outlives its containers.
    e.ok(&[
        "run",
        "--rm",
        "-v",
        "keep:/v",
        "busybox",
        "sh",
        "-c",
        "echo persist > /v/x",
    ]);
    assert_eq!(
        e.ok(&["run", "--rm", "-v", "keep:/v", "busybox", "cat", "/v/x"]),
        "persist"
    );
    assert!(e.root().join("volumes/keep/_data/x").exists());
    // An anonymous volume goes with rm -v.
    e.ok(&["create", "--name", "anon", "-v", "/scratch", "busybox", "true"]);
    let vols: Vec<_> = std::fs::read_dir(e.root().join("volumes"))
        .expect("volumes")
        .flatten()
        .collect();
    assert_eq!(vols.len(), 2);
    e.ok(&["rm", "-v", "anon"]);
    let vols: Vec<String> = std::fs::read_dir(e.root().join("volumes"))
        .expect("volumes")
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        vols,
        vec!["keep".to_string()],
        "rm -v removes the anonymous volume only"
    );
    let out = e.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "touch /a 2>/dev/null && echo root=rw || echo root=ro; touch /scratch/b && echo tmpfs=rw",
    ]);
    assert_eq!(out, "root=ro\ntmpfs=rw");
    e.assert_clean();
}

#[test]
fn resource_limits_reach_the_cgroup() {
    let e = Engine::new();
    let out = e.ok(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max; \
         cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "67108864", "{out}");
    assert_eq!(lines[1], "50", "{out}");
    assert!(lines[2].starts_with("50000"), "{out}");
    e.assert_clean();
}

/// The runtime moves a new init to another CPU while it sets up (runtime::spawn::spread): the
/// container's process must still get every CPU we may run on.
#[test]
fn container_keeps_the_callers_cpu_affinity() {
    let e = Engine::new();
    let ours = std::fs::read_to_string("/proc/self/status").expect("read our status");
    let want = ours
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/self/status")
        .to_string();
    let out = e.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "Cpus_allowed_list:",
        "/proc/self/status",
    ]);
    assert_eq!(out.trim(), want.trim());
    e.assert_clean();
}

/// cgroup mounts are made last (runtime::rootfs::Rootfs::mount_all), but never over a later
/// mount that covers them: with the host's /sys bound in, /sys/fs/cgroup is the host's.
#[test]
fn a_bound_sys_still_covers_the_cgroup_mount() {
    let e = Engine::new();
    let host: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("read /sys/fs/cgroup")
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    let out = e.ok(&["run", "--rm", "-v", "/sys:/sys:ro", "busybox", "ls", "/sys/fs/cgroup"]);
    let mut inside: Vec<&str> = out.split_whitespace().collect();
    let mut host: Vec<&str> = host.iter().map(String::as_str).collect();
    inside.sort_unstable();
    host.sort_unstable();
    assert_eq!(inside, host);
    e.assert_clean();
}
