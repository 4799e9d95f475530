//! Looking into and working with running containers: exec, top, stats, cp, and shell completion.

mod common;

use common::engine::Engine;
use common::{stderr, stdout};

#[test]
fn exec_runs_inside_with_the_containers_view_and_flags() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "600",
    ]);
    let o = e.lbox(&[
        "exec",
        "ex",
        "sh",
        "-c",
        "echo $FROM_RUN $HOSTNAME; cat /proc/1/cmdline | tr '\\0' ' '; exit 6",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("1 ") && out.contains("sleep 600"), "{out}");
    assert_eq!(
        e.ok(&[
            "exec",
            "-e",
            "X=2",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "ex",
            "sh",
            "-c",
            "echo $X; pwd; id -un"
        ]),
        "2\n/tmp\nnobody"
    );
    let caps = e.ok(&["exec", "ex", "grep", "-E", "CapEff|Seccomp:", "/proc/self/status"]);
    assert!(
        caps.contains("00000000a80425fb") && caps.contains("Seccomp:\t2"),
        "exec gets the container's confinement: {caps}"
    );
    let o = e
        .cmd(&["exec", "-i", "ex", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    let mut o = o;
    o.stdin.take().expect("stdin").write_all(b"piped in\n").expect("write");
    let out = o.wait_with_output().expect("wait");
    assert_eq!(stdout(&out), "piped in\n");
    e.ok(&["exec", "-d", "ex", "sh", "-c", "echo bg > /tmp/bg"]);
    e.eventually(5, "the detached exec", || {
        e.lbox(&["exec", "ex", "cat", "/tmp/bg"]).status.success()
    });
    e.fails(&["exec", "ex", "nosuchcmd"], 127);
    e.ok(&["stop", "-t", "1", "ex"]);
    let err = e.fails(&["exec", "ex", "true"], 125);
    assert!(err.contains("not running") && err.contains("lbox start"), "{err}");
    e.ok(&["rm", "ex"]);
    e.assert_clean();
}

#[test]
fn top_and_stats_show_the_containers_processes_and_usage() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "tp",
        "-m",
        "64m",
        "busybox",
        "sh",
        "-c",
        "sleep 600 & sleep 601",
    ]);
    e.eventually(5, "both sleeps", || {
        e.ok(&["top", "tp"]).matches("sleep 60").count() == 2
    });
    let top = e.ok(&["top", "tp", "-o", "pid,args"]);
    assert!(top.starts_with("PID") || top.trim_start().starts_with("PID"), "{top}");
    assert!(!top.contains("cargo"), "only the container's processes: {top}");
    let stats = e.ok(&["stats", "--no-stream"]);
    assert!(stats.contains("MEM USAGE / LIMIT") && stats.contains("tp"), "{stats}");
    let json = e.ok(&["stats", "--no-stream", "--format", "json", "tp"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["PIDs"], "2", "sh execs its last command: {v}");
    assert!(
        v["MemUsage"].as_str().is_some_and(|m| m.ends_with("/ 67.1MB")),
        "the limit is the container's: {v}"
    );
    // NET I/O: another container on the same (test-made) bridge pings this one.
    let ip = e.inspect("tp", "{{.NetworkSettings.IPAddress}}");
    e.ok(&["run", "--rm", "busybox", "ping", "-c", "3", "-W", "2", &ip]);
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["stats", "--no-stream", "--format", "json", "tp"])).expect("json");
    let net = v["NetIO"].as_str().unwrap_or("").to_string();
    let (rx, tx) = net.split_once(" / ").expect("rx / tx");
    assert!(rx != "0B" && tx != "0B", "the pings went in and out: {net}");
    e.ok(&["rm", "-f", "tp"]);
    e.fails(&["top", "tp"], 125);
    e.assert_clean();
}

/// The whole disk holding `p`, as a /dev path (a partition's parent disk), if it is on one.
fn disk_of(p: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(p).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sys = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")).ok()?;
    let disk = if sys.join("partition").exists() {
        sys.parent()?.to_path_buf()
    } else {
        sys
    };
    let uevent = std::fs::read_to_string(disk.join("uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(format!("/dev/{name}"))
}

#[test]
fn block_io_limits_reach_the_cgroup_and_stats_count_the_bytes() {
    let e = Engine::new();
    let err = e.fails(
        &["run", "--rm", "--device-write-bps", "/dev/null:1mb", "busybox", "true"],
        125,
    );
    assert!(err.contains("not a block device"), "{err}");
    let err = e.fails(&["run", "--rm", "--blkio-weight", "5", "busybox", "true"], 125);
    assert!(err.contains("10 to 1000"), "{err}");
    let Some(disk) = disk_of(&e.root()) else {
        eprintln!("the engine's root is on no block device here: the throttle part is not run");
        e.assert_clean();
        return;
    };
    let limit = format!("{disk}:100mb");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "io",
        "--device-write-bps",
        &limit,
        "busybox",
        "sleep",
        "600",
    ]);
    let rate = e.inspect("io", "{{json .HostConfig.BlkioDeviceWriteBps}}");
    assert!(rate.contains("104857600") && rate.contains(&disk), "{rate}");
    // The limit is in the container's cgroup (v1 blkio or v2 io.max).
    let pid = e.inspect("io", "{{.State.Pid}}");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let file = match cg.lines().find(|l| l.contains(":blkio:")) {
        Some(l) => format!(
            "/sys/fs/cgroup/blkio{}/blkio.throttle.write_bps_device",
            l.rsplit(':').next().unwrap_or("")
        ),
        None => format!(
            "/sys/fs/cgroup{}/io.max",
            cg.lines().last().unwrap_or("").trim_start_matches("0::")
        ),
    };
    let text = std::fs::read_to_string(&file).expect("limit file");
    assert!(text.contains("104857600"), "{file}: {text}");
    // Direct writes go through the block layer, which counts them for the container.
    e.ok(&[
        "exec",
        "io",
        "dd",
        "if=/dev/zero",
        "of=/tmp/blk",
        "bs=1M",
        "count=4",
        "oflag=direct",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["stats", "--no-stream", "--format", "json", "io"])).expect("json");
    let block = v["BlockIO"].as_str().unwrap_or("").to_string();
    let (_, written) = block.split_once(" / ").expect("read / write");
    assert!(written.ends_with("MB") && written != "0B", "4 MiB written: {block}");
    e.ok(&["rm", "-f", "io"]);
    e.assert_clean();
}

#[test]
fn cp_both_ways_running_and_stopped_never_escaping() {
    let e = Engine::new();
    let host = e.path("h");
    std::fs::create_dir_all(host.join("dir/sub")).expect("mkdir");
    std::fs::write(host.join("dir/sub/f"), "deep").expect("write");
    std::fs::write(host.join("one"), "1").expect("write");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "cpy",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo made > /tmp/made; ln -s / /tmp/escape; sleep 600",
    ]);
    e.eventually(5, "the file", || {
        e.lbox(&["exec", "cpy", "test", "-e", "/tmp/made"]).status.success()
    });
    let one = host.join("one");
    e.ok(&["cp", one.to_str().expect("utf8"), "cpy:/scratch/"]);
    assert_eq!(
        e.ok(&["exec", "cpy", "cat", "/scratch/one"]),
        "1",
        "into a tmpfs only the container sees"
    );
    e.ok(&["cp", host.join("dir").to_str().expect("utf8"), "cpy:/tmp"]);
    assert_eq!(e.ok(&["exec", "cpy", "cat", "/tmp/dir/sub/f"]), "deep");
    let out = host.join("out");
    e.ok(&["cp", "cpy:/tmp/made", out.to_str().expect("utf8")]);
    assert_eq!(std::fs::read_to_string(&out).expect("copied out"), "made\n");
    // A symlink to / inside the container resolves to the container's root, not the host's.
    let esc = host.join("esc");
    let o = e.lbox(&["cp", "cpy:/tmp/escape/etc/hostname", esc.to_str().expect("utf8")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let short = e.inspect("cpy", "{{.Config.Hostname}}");
    assert_eq!(std::fs::read_to_string(&esc).expect("read").trim(), short);
    e.ok(&["stop", "-t", "1", "cpy"]);
    // Stopped: through the root filesystem.
    let out2 = host.join("out2");
    e.ok(&["cp", "cpy:/tmp/dir", out2.to_str().expect("utf8")]);
    assert_eq!(
        std::fs::read_to_string(out2.join("sub/f")).expect("dir copied out"),
        "deep"
    );
    e.ok(&["cp", one.to_str().expect("utf8"), "cpy:/root/one"]);
    e.ok(&["start", "cpy"]);
    assert_eq!(e.ok(&["exec", "cpy", "cat", "/root/one"]), "1");
    e.fails(&["cp", "cpy:/no/such", out.to_str().expect("utf8")], 125);
    e.fails(&["cp", "a", "b"], 125);
    e.ok(&["rm", "-f", "cpy"]);
    e.assert_clean();
}

#[test]
fn shell_completion_scripts() {
    let e = Engine::new();
    for (shell, marker) in [("bash", "complete"), ("zsh", "#compdef"), ("fish", "complete -c lbox")] {
        let out = e.ok(&["completion", shell]);
        assert!(
            out.contains(marker) && out.contains("run"),
            "{shell}: {}",
            &out[..out.len().min(200)]
        );
    }
    let o = e.lbox(&["completion", "tcsh"]);
    assert_eq!(o.status.code(), Some(125));
    e.assert_clean();
}

#[test]
fn attach_to_a_detached_container_with_stdin() {
    use std::io::Write;
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "att",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got:$l; echo err:$l >&2; done; echo done; exit 3",
    ]);
    let mut c = e
        .cmd(&["attach", "att"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("attach");
    {
        let mut i = c.stdin.take().expect("stdin");
        i.write_all(b"one\ntwo\n").expect("write");
    }
    let o = c.wait_with_output().expect("wait");
    assert_eq!(
        o.status.code(),
        Some(3),
        "attach exits with the container's code: {}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "got:one\ngot:two\ndone\n");
    assert_eq!(stderr(&o), "err:one\nerr:two\n");
    assert!(
        e.ok(&["logs", "att"]).contains("got:two"),
        "attached output is logged too"
    );
    let err = e.fails(&["attach", "att"], 125);
    assert!(err.contains("stopped") && err.contains("lbox start"), "{err}");
    e.ok(&["rm", "att"]);
    e.assert_clean();
}

/// The entries of a tar archive, as `tar -tvf` lists them.
fn tar_listing(archive: &std::path::Path) -> String {
    let o = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(archive)
        .output()
        .expect("tar");
    assert!(o.status.success(), "tar -tvf: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn export_writes_the_containers_own_files_as_a_tar() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "exp",
        "-v",
        "/data",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo made > /tmp/made; ln /tmp/made /tmp/hard; ln -s /etc/passwd /tmp/soft; rm /bin/vi; \
         echo vol > /data/in-volume; echo tmp > /scratch/in-tmpfs; touch /tmp/ready; sleep 600",
    ]);
    e.eventually(5, "the files", || {
        e.lbox(&["exec", "exp", "test", "-e", "/tmp/ready"]).status.success()
    });
    let running = e.path("running.tar");
    e.ok(&["export", "-o", running.to_str().expect("utf8"), "exp"]);
    let list = tar_listing(&running);
    for want in [
        "tmp/hard",
        "bin/busybox",
        "etc/passwd",
        "tmp/made link to tmp/hard",
        "tmp/soft -> /etc/passwd",
    ] {
        assert!(list.contains(want), "{want:?} missing:\n{list}");
    }
    for never in ["bin/vi", "in-volume", "in-tmpfs", "proc/self", "sys/kernel"] {
        assert!(!list.contains(never), "{never:?} exported:\n{list}");
    }

    // Stopped: the root filesystem is mounted for the export and unmounted after it; stdout works.
    e.ok(&["stop", "-t", "0", "exp"]);
    let out = e.cmd(&["container", "export", "exp"]).output().expect("export");
    assert!(out.status.success(), "{}", stderr(&out));
    let stopped = e.path("stopped.tar");
    std::fs::write(&stopped, &out.stdout).expect("write");
    let list2 = tar_listing(&stopped);
    assert!(list2.contains("tmp/made") && !list2.contains("bin/vi"), "{list2}");

    let err = e.fails(
        &["export", "-o", e.path("x.tar").to_str().expect("utf8"), "nosuch"],
        125,
    );
    assert!(err.contains("nosuch"), "{err}");
    assert!(!e.path("x.tar").exists() && !e.path("x.lbox-partial").exists());
    e.ok(&["rm", "exp"]);
    e.assert_clean();
}

#[test]
fn a_foreground_terminal_run_is_in_the_log() {
    let e = Engine::new();
    // script(1) gives lbox a terminal to run the container's on.
    let line = format!(
        "{} run -t --name fgt busybox sh -c 'echo on-the-terminal; tty'",
        common::lbox().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("LBOX_ROOT", e.root())
        .env("LBOX_RUN", e.path("run"))
        .env("LBOX_CGROUP_PARENT", &e.cgroup_parent)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script");
    let shown = stdout(&out);
    assert!(
        shown.contains("on-the-terminal") && shown.contains("/dev/pts/"),
        "{shown} {}",
        stderr(&out)
    );
    let logged = e.ok(&["logs", "fgt"]);
    assert!(
        logged.contains("on-the-terminal") && logged.contains("/dev/pts/"),
        "{logged}"
    );
    e.ok(&["rm", "fgt"]);
    e.assert_clean();
}
