//! The monitor and its jobs, end to end: a killed monitor, many containers at once, killed
//! commands, restart policies, health checks, logs, pause, an external runtime (runc), and the
//! cleanup commands (system prune, volumes).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::engine::Engine;
use common::{stderr, stdout};

#[test]
fn a_killed_monitor_leaves_the_container_exited_and_removable() {
    let e = Engine::new();
    e.ok(&["run", "-d", "--name", "mon", "busybox", "sleep", "600"]);
    let pid: i32 = e.inspect("mon", "{{.State.Pid}}").parse().expect("pid");
    let monitor: i32 = e.inspect("mon", "{{.State.MonitorPid}}").parse().expect("monitor pid");
    assert!(monitor > 0 && monitor != pid);
    let rss: u64 = std::fs::read_to_string(format!("/proc/{monitor}/status"))
        .expect("monitor status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    eprintln!("monitor resident memory: {rss} KiB");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(monitor), nix::sys::signal::Signal::SIGKILL).expect("kill");
    e.eventually(10, "the monitor to die", || {
        !std::path::Path::new(&format!("/proc/{monitor}")).exists()
    });
    let ps = e.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (255)"), "{ps}");
    assert!(e.inspect("mon", "{{.State.Error}}").contains("monitor"));
    e.eventually(10, "the container's process to be gone", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });
    e.ok(&["rm", "mon"]);
    e.assert_clean();
}

#[test]
fn fifty_concurrent_detached_runs_all_start_and_are_listed() {
    let e = Engine::new();
    let children: Vec<_> = (0..50)
        .map(|i| {
            e.cmd(&["run", "-d", "--name", &format!("c{i}"), "busybox", "sleep", "600"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(o.status.success(), "run -d failed: {}", stderr(&o));
    }
    let running = e.ok(&["ps", "-q"]);
    assert_eq!(running.lines().count(), 50, "{running}");
    let ids = e.all_ids();
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().map(String::as_str));
    e.ok(&args);
    assert_eq!(e.all_ids().len(), 0);
    e.assert_clean();
}

#[test]
fn commands_killed_at_random_moments_leave_nothing_prune_does_not_clean() {
    let e = Engine::new();
    let mut seed: u64 = std::process::id() as u64;
    let mut rand = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    for i in 0..20 {
        let args: Vec<String> = match i % 3 {
            0 => vec![
                "run".into(),
                "-d".into(),
                "busybox".into(),
                "sleep".into(),
                "600".into(),
            ],
            1 => vec![
                "run".into(),
                "--rm".into(),
                "busybox".into(),
                "sleep".into(),
                "0.2".into(),
            ],
            _ => vec!["run".into(), "busybox".into(), "true".into()],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = e
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(rand(40)));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Everything that was made is either a container ps -a shows, or something prune cleans.
    let ids = e.all_ids();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(ids.iter().map(String::as_str));
        e.ok(&args);
    }
    e.ok(&["system", "prune", "-f", "--volumes"]);
    assert_eq!(e.all_ids().len(), 0);
    e.eventually(10, "the trash to be emptied", || {
        std::fs::read_dir(e.root().join("trash")).map_or(true, |mut d| d.next().is_none())
    });
    let left: Vec<_> = std::fs::read_dir(e.root().join("containers"))
        .map(|d| d.flatten().map(|x| x.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "container directories left: {left:?}");
    let state: Vec<_> = std::fs::read_dir(e.path("run/runtime"))
        .map(|d| {
            d.flatten()
                .map(|x| x.file_name())
                .filter(|n| !n.to_string_lossy().contains('@'))
                .collect()
        })
        .unwrap_or_default();
    assert!(state.is_empty(), "runtime state left: {state:?}");
    e.assert_clean();
}

#[test]
fn restart_policies_and_stop_signals() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    e.eventually(20, "two restarts then exited", || {
        e.inspect("flaky", "{{.State.Status}} {{.RestartCount}}") == "exited 2"
    });
    assert_eq!(e.inspect("flaky", "{{.State.ExitCode}}"), "3");
    assert_eq!(e.ok(&["logs", "flaky"]).lines().count(), 3, "three runs, one log");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    e.eventually(20, "always restarts", || {
        e.inspect("again", "{{.RestartCount}}").parse::<u32>().unwrap_or(0) >= 2
    });
    e.ok(&["stop", "-t", "1", "again"]);
    let n = e.inspect("again", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        e.inspect("again", "{{.State.Status}} {{.RestartCount}}"),
        format!("exited {n}"),
        "a stopped container stays stopped"
    );
    e.fails(&["run", "-d", "--rm", "--restart", "always", "busybox", "true"], 125);
    // --stop-signal and --stop-timeout.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "sig",
        "--stop-signal",
        "USR1",
        "--stop-timeout",
        "5",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' USR1; echo armed; while true; do sleep 0.1; done",
    ]);
    // Stopped only once the trap is set: before that, USR1 would kill the shell (code 138).
    e.eventually(10, "the container's trap to be set", || {
        e.ok(&["logs", "sig"]).contains("armed")
    });
    e.ok(&["stop", "sig"]);
    assert_eq!(e.inspect("sig", "{{.State.ExitCode}}"), "7");
    e.ok(&["rm", "flaky", "again", "sig"]);
    e.assert_clean();
}

/// Zombie processes in the container, from /proc (state Z), read through `lbox exec`.
fn zombies(e: &Engine, name: &str) -> usize {
    let stats = e.ok(&["exec", name, "sh", "-c", "cat /proc/[0-9]*/stat"]);
    stats.lines().filter(|l| l.contains(") Z ")).count()
}

#[test]
fn init_reaps_orphans_and_forwards_signals() {
    let e = Engine::new();
    // An orphan whose parent exits is handed to PID 1. Without --init PID 1 is `sleep`, which
    // never waits: the orphan stays a zombie (this control shows the check can fail).
    let script = "(sleep 0.1 &); exec sleep 600";
    e.ok(&["run", "-d", "--name", "bare", "busybox", "sh", "-c", script]);
    e.ok(&["run", "-d", "--init", "--name", "tini", "busybox", "sh", "-c", script]);
    e.eventually(10, "the orphan of the bare container to become a zombie", || {
        zombies(&e, "bare") == 1
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(zombies(&e, "tini"), 0, "--init reaps the orphan");
    let cmdline = e.ok(&["exec", "tini", "cat", "/proc/1/cmdline"]).replace('\0', " ");
    assert!(
        cmdline.starts_with("/dev/init -- sh -c"),
        "PID 1 is the init: {cmdline}"
    );
    // The init forwards the stop signal, which sleep (not PID 1 any more) dies of at once: 143,
    // well before the 20 s timeout. Without it, PID 1 ignores SIGTERM and is killed: 137.
    let t = std::time::Instant::now();
    e.ok(&["stop", "-t", "20", "tini"]);
    assert!(t.elapsed() < Duration::from_secs(10), "stop took {:?}", t.elapsed());
    assert_eq!(e.inspect("tini", "{{.State.ExitCode}}"), "143");
    e.ok(&["stop", "-t", "1", "bare"]);
    assert_eq!(e.inspect("bare", "{{.State.ExitCode}}"), "137");
    // Exit codes pass through; a program that is not there is 127, as Docker's init gives.
    let o = e.lbox(&["run", "--rm", "--init", "busybox", "sh", "-c", "echo hi; exit 4"]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(4), "hi\n"),
        "{}",
        stderr(&o)
    );
    let o = e.lbox(&["run", "--rm", "--init", "busybox", "no-such-program"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-such-program: No such file"), "{}", stderr(&o));
    // The same init under an external runtime.
    let o = e.lbox(&[
        "run",
        "--rm",
        "--init",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "cat /proc/1/cmdline; exit 6",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("/dev/init\0--"), "{}", stdout(&o));
    e.ok(&["rm", "bare", "tini"]);
    e.assert_clean();
}

#[test]
fn health_checks_report_starting_unhealthy_healthy() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "--health-timeout",
        "2s",
        "busybox",
        "sh",
        "-c",
        // Unhealthy after ~0.4 s, healthy after 4: a wide window for the `ps` below on a busy machine.
        "sleep 4; touch /tmp/ok; sleep 600",
    ]);
    assert_eq!(e.inspect("hc", "{{.State.Health.Status}}"), "starting");
    e.eventually(10, "unhealthy", || {
        e.inspect("hc", "{{.State.Health.Status}}") == "unhealthy"
    });
    assert!(e.ok(&["ps"]).contains("(unhealthy)"));
    e.eventually(10, "healthy", || {
        e.inspect("hc", "{{.State.Health.Status}}") == "healthy"
    });
    assert!(e.ok(&["ps", "--filter", "health=healthy", "-q"]).len() == 12);
    e.ok(&["rm", "-f", "hc"]);
    e.assert_clean();
}

#[test]
fn logs_follow_tail_timestamps_and_streams() {
    let e = Engine::new();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "lg",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done",
    ]);
    let o = e.lbox(&["logs", "-f", "lg"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o),
        "out1\nout2\nout3\n",
        "logs -f returns once the container exits"
    );
    assert_eq!(stderr(&o), "err1\nerr2\nerr3\n");
    assert_eq!(e.ok(&["logs", "--tail", "1", "lg"]), "");
    let o = e.lbox(&["logs", "--tail", "2", "lg"]);
    assert_eq!(format!("{}{}", stdout(&o), stderr(&o)).lines().count(), 2);
    let ts = e.ok(&["logs", "-t", "lg"]);
    let first = ts.lines().next().unwrap_or("");
    assert!(
        first.len() > 30 && first.as_bytes()[4] == b'-' && first.ends_with(" out1"),
        "{first}"
    );
    assert_eq!(e.ok(&["logs", "--since", "2099-01-01T00:00:00Z", "lg"]), "");
    e.ok(&["rm", "lg"]);
    e.assert_clean();
}

#[test]
fn pause_unpause_wait_start_attach_and_ps_formats() {
    let e = Engine::new();
    e.ok(&[
        "run", "-d", "--name", "pz", "--label", "tier=web", "busybox", "sleep", "600",
    ]);
    e.ok(&["pause", "pz"]);
    assert_eq!(e.inspect("pz", "{{.State.Status}} {{.State.Paused}}"), "paused true");
    assert!(e.ok(&["ps"]).contains("(Paused)"));
    e.fails(&["pause", "pz"], 1);
    e.ok(&["unpause", "pz"]);
    assert_eq!(e.inspect("pz", "{{.State.Status}}"), "running");
    e.ok(&[
        "create",
        "--name",
        "later",
        "busybox",
        "sh",
        "-c",
        "echo attached; exit 4",
    ]);
    let o = e.lbox(&["start", "-a", "later"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(4), "attached\n"));
    assert_eq!(
        e.ok(&["ps", "--filter", "label=tier=web", "--format", "{{.Names}} {{.State}}"]),
        "pz running"
    );
    assert_eq!(
        e.ok(&["ps", "-a", "--filter", "status=exited", "--format", "{{.Names}}"]),
        "later"
    );
    assert_eq!(e.ok(&["ps", "-a", "-n", "1", "--format", "{{.Names}}"]), "later");
    let json = e.ok(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("one JSON object per line");
    assert_eq!(v["Names"], "pz");
    assert_eq!(e.ok(&["ps", "-q", "--no-trunc"]).len(), 64);
    e.fails(&["ps", "--filter", "colour=red"], 125);
    e.ok(&["kill", "pz"]);
    assert_eq!(e.ok(&["wait", "pz"]), "137");
    e.ok(&["rm", "pz", "later"]);
    e.assert_clean();
}

#[test]
fn an_external_runtime_runs_the_same_containers() {
    let e = Engine::new();
    let o = e.lbox(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "echo via runc; exit 5",
    ]);
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(5), "via runc\n"),
        "{}",
        stderr(&o)
    );
    e.ok(&[
        "run",
        "-d",
        "--name",
        "rc",
        "--runtime",
        "runc",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(
        e.inspect("rc", "{{.State.Status}} {{.HostConfig.Runtime}}"),
        "running runc"
    );
    e.ok(&["stop", "-t", "1", "rc"]);
    assert_eq!(e.inspect("rc", "{{.State.ExitCode}}"), "137");
    e.ok(&["rm", "rc"]);
    e.fails(
        &["run", "--rm", "--runtime", "/no/such/runtime", "busybox", "true"],
        125,
    );
    e.assert_clean();
}

#[test]
fn volume_commands_and_image_conflicts() {
    let e = Engine::new();
    assert_eq!(e.ok(&["volume", "create", "data1"]), "data1");
    e.ok(&["run", "--rm", "-v", "data1:/d", "busybox", "sh", "-c", "echo x > /d/f"]);
    assert!(e.ok(&["volume", "ls"]).contains("data1"));
    assert_eq!(
        e.ok(&["volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data1"]),
        "data1 local"
    );
    e.ok(&["create", "--name", "user", "-v", "data1:/d", "busybox", "true"]);
    let err = e.fails(&["volume", "rm", "data1"], 1);
    assert!(err.contains("in use") && err.contains("user"), "{err}");
    let err = e.fails(&["rmi", "busybox"], 1);
    assert!(err.contains("conflict") && err.contains("user"), "{err}");
    e.ok(&["rm", "user"]);
    e.ok(&["volume", "rm", "data1"]);
    e.fails(&["volume", "inspect", "data1"], 1);
    e.ok(&["volume", "create", "keepme"]);
    e.ok(&["create", "-v", "/anon", "--name", "an", "busybox", "true"]);
    e.ok(&["rm", "an"]);
    let pruned = e.ok(&["volume", "prune", "-f"]);
    assert!(
        !pruned.contains("keepme") && pruned.contains("Deleted Volumes"),
        "{pruned}"
    );
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "keepme");
    let df = e.ok(&["system", "df"]);
    assert!(df.contains("Images") && df.contains("Local Volumes"), "{df}");
    assert!(e.ok(&["system", "info"]).contains("Cgroup Version"));
    e.assert_clean();
}
