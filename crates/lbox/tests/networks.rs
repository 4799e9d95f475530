//! `lbox network …` end to end: bridges made and removed with their records, overlapping or
//! malformed subnets refused with nothing left behind.

mod common;

use common::engine::Engine;
use common::stderr;

/// A /24 of the test's own (tests run in parallel; 10.252/16 is for this file).
fn subnet(n: u32) -> String {
    format!("10.252.{}.0/24", (std::process::id() * 3 + n) % 250)
}

fn bridge_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn networks_are_created_listed_inspected_and_removed_with_their_bridges() {
    let e = Engine::new();
    let net = subnet(0);
    let id = e.ok(&["network", "create", "--subnet", &net, "--label", "tier=front", "front"]);
    assert_eq!(id.len(), 64);
    let bridge = e.bridge_of("front");
    assert!(bridge_exists(&bridge), "bridge {bridge} made");
    let gw = net.replace(".0/24", ".1");
    let addrs = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    assert!(addrs.contains(&gw), "the bridge has the gateway address {gw}");
    assert_eq!(
        e.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Labels.tier}}",
            &id[..6]
        ]),
        "front bridge front"
    );
    assert!(e.ok(&["network", "ls"]).contains("front"));
    assert_eq!(e.ok(&["network", "ls", "-q"]), id[..12]);
    // Refusals: nothing is made.
    let err = e.fails(&["network", "create", "--subnet", &net, "again"], 125);
    assert!(err.contains("overlaps with network front"), "{err}");
    assert!(e
        .fails(&["network", "create", "--subnet", &subnet(1), "front"], 125)
        .contains("already in use"));
    assert!(e
        .fails(&["network", "create", "--subnet", "10.252.1.7/24", "bad"], 125)
        .contains("host bits"));
    assert!(e
        .fails(&["network", "create", "--subnet", "nonsense", "bad"], 125)
        .contains("invalid subnet"));
    assert!(e
        .fails(&["network", "create", "-d", "macvlan", "bad"], 125)
        .contains("not supported"));
    assert_eq!(e.ok(&["network", "ls", "-q"]).lines().count(), 1);
    let o = e.lbox(&["network", "rm", "front", "nosuch"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("network nosuch not found"));
    assert!(!bridge_exists(&bridge), "bridge {bridge} removed");
    e.ok(&["network", "rm", "-f", "nosuch"]);
    // prune removes what no container uses.
    e.ok(&["network", "create", "--subnet", &subnet(2), "p1"]);
    let b2 = e.bridge_of("p1");
    assert!(e.ok(&["network", "prune", "-f"]).contains("p1"));
    assert!(!bridge_exists(&b2));
    assert_eq!(e.ok(&["network", "ls", "-q"]), "");
    e.assert_clean();
}

#[test]
fn containers_on_a_network_reach_each_other_by_name_across_restarts() {
    let e = Engine::new();
    let net = subnet(10);
    let base = net.trim_end_matches(".0/24").to_string();
    e.ok(&["network", "create", "--subnet", &net, "app"]);
    let www = e.path("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("index.html"), "hello from web\n").expect("index");
    let vol = format!("{}:/www:ro", www.display());
    let web = [
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "--network-alias",
        "site",
        "-v",
        &vol,
        "busybox",
    ];
    let serve = ["httpd", "-f", "-p", "8080", "-h", "/www"];
    e.ok(&[&web[..], &serve[..]].concat());
    assert_eq!(e.inspect("web", "{{.NetworkSettings.IPAddress}}"), format!("{base}.2"));
    let fetch = |target: &str| {
        e.lbox(&[
            "run",
            "--rm",
            "--network",
            "app",
            "busybox",
            "sh",
            "-c",
            &format!(
                "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://{target}:8080/ && exit 0; sleep 0.2; done; exit 1"
            ),
        ])
    };
    for target in ["web", "site"] {
        let o = fetch(target);
        assert_eq!(common::stdout(&o), "hello from web\n", "by {target}: {}", stderr(&o));
    }
    // The network is in use: refused, with the names.
    let err = e.fails(&["network", "rm", "app"], 1);
    assert!(err.contains("in use by containers web"), "{err}");
    // Restart web on another address: a filler takes its old one meanwhile.
    e.ok(&["stop", "-t", "1", "web"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "filler",
        "--network",
        "app",
        "--ip",
        &format!("{base}.2"),
        "busybox",
        "sleep",
        "600",
    ]);
    e.ok(&["start", "web"]);
    assert_eq!(e.inspect("web", "{{.NetworkSettings.IPAddress}}"), format!("{base}.3"));
    let hosts = e.ok(&["exec", "filler", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!("{base}.3\tweb site")),
        "the filler's hosts follow web: {hosts}"
    );
    let o = fetch("web");
    assert_eq!(
        common::stdout(&o),
        "hello from web\n",
        "after the restart: {}",
        stderr(&o)
    );
    // Bad --ip: taken, outside the subnet, not an address; nothing is left.
    let taken = e.fails(
        &[
            "run",
            "--rm",
            "--network",
            "app",
            "--ip",
            &format!("{base}.3"),
            "busybox",
            "true",
        ],
        125,
    );
    assert!(taken.contains("already in use"), "{taken}");
    assert!(e
        .fails(
            &["run", "--rm", "--network", "app", "--ip", "10.1.2.3", "busybox", "true"],
            125
        )
        .contains("not in network"));
    assert!(e
        .fails(
            &["run", "--rm", "--network", "app", "--ip", "x", "busybox", "true"],
            125
        )
        .contains("invalid --ip"));
    assert!(e
        .fails(&["run", "--rm", "--network", "nosuch", "busybox", "true"], 125)
        .contains("network nosuch not found"));
    assert!(e
        .fails(&["run", "--rm", "--ip", "10.1.2.3", "busybox", "true"], 125)
        .contains("needs a user-defined network"));
    assert_eq!(e.ok(&["ps", "-aq"]).lines().count(), 2, "web and filler only");
    let ids: Vec<String> = ["web", "filler"].iter().map(|n| e.inspect(n, "{{.Id}}")).collect();
    let net_id = e.ok(&["network", "inspect", "-f", "{{.Id}}", "app"]);
    e.ok(&["rm", "-f", "web", "filler"]);
    // The kernel deletes each veth pair with its container's network namespace, asynchronously.
    for id in &ids {
        let veth = format!("lv{}{}", &id[..7], &net_id[..6]);
        e.eventually(10, &format!("veth {veth} to go"), || !bridge_exists(&veth));
    }
    e.ok(&["network", "rm", "app"]);
    e.assert_clean();
}

#[test]
fn networks_are_isolated_and_internal_ones_have_no_way_out() {
    let e = Engine::new();
    let (s1, s2, s3) = (subnet(20), subnet(21), subnet(22));
    let gw = |s: &str| s.replace(".0/24", ".1");
    e.ok(&["network", "create", "--subnet", &s1, "one"]);
    e.ok(&["network", "create", "--subnet", &s2, "two"]);
    e.ok(&["network", "create", "--internal", "--subnet", &s3, "closed"]);
    let bridge = e.bridge_of("one");
    let table = common::nft_table_with(&bridge).expect("the networks' rules are in an nftables table");
    assert!(table.starts_with("lbox"), "a table of LockBox's own: {table}");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "one",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/",
    ]);
    let web_ip = e.inspect("web", "{{.NetworkSettings.IPAddress}}");
    let wget = |net: &str, extra: &[&str], script: &str| {
        // --init: `timeout` must not be PID 1, which ignores the SIGTERM it would send itself.
        let mut args = vec!["run", "--rm", "--init", "--network", net];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        e.lbox(&args).status.code()
    };
    let fetch = format!(
        "for i in 1 2 3 4 5; do timeout 3 wget -q -O /dev/null http://{web_ip}:8080/etc/hostname && exit 0; sleep 0.2; done; exit 1"
    );
    assert_eq!(wget("one", &[], &fetch), Some(0), "same network: reachable");
    let once = format!("timeout 3 wget -q -O /dev/null http://{web_ip}:8080/etc/hostname");
    assert_ne!(wget("two", &[], &once), Some(0), "another network: isolated");
    // A listener of the test's own on network two's gateway (a host address).
    let listener = std::net::TcpListener::bind((gw(&s2).as_str(), 0)).expect("listen on the gateway");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for c in listener.incoming().flatten() {
            let mut c = c;
            let _ = std::io::Write::write_all(&mut c, b"pong\n");
        }
    });
    let knock = format!("echo ping | timeout 3 nc {} {port} | grep -q pong", gw(&s2));
    assert_eq!(wget("two", &[], &knock), Some(0), "control: the host listener answers");
    // An internal container, even with a route out added by hand, reaches neither the host's
    // other addresses nor other networks.
    let routed = |cmd: &str| format!("ip route add default via {} && {cmd}", gw(&s3));
    assert_ne!(
        wget("closed", &["--cap-add", "NET_ADMIN"], &routed(&knock)),
        Some(0),
        "internal: no host"
    );
    assert_ne!(
        wget("closed", &["--cap-add", "NET_ADMIN"], &routed(&once)),
        Some(0),
        "internal: no other network"
    );
    assert_eq!(
        wget("closed", &[], "ip route | grep -c default"),
        Some(1),
        "internal: no default route"
    );
    e.ok(&["rm", "-f", "web"]);
    e.ok(&["network", "rm", "one", "two", "closed"]);
    let tables = std::process::Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft");
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains(&table),
        "the table goes with the last network"
    );
    e.assert_clean();
}

/// The ports of a bridge (its veths' host ends).
fn bridge_ports(bridge: &str) -> Vec<String> {
    std::fs::read_dir(format!("/sys/class/net/{bridge}/brif"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn many_runs_leave_nothing_behind_and_never_share_an_address() {
    let e = Engine::new();
    e.ok(&["network", "create", "--subnet", &subnet(30), "churn"]);
    let bridge = e.bridge_of("churn");
    // 200 start/stop cycles, each with an address, a veth pair and a published port.
    for i in 0..200 {
        let o = e.lbox(&[
            "run",
            "--rm",
            "--network",
            "churn",
            "-p",
            "127.0.0.1::80",
            "busybox",
            "true",
        ]);
        assert!(o.status.success(), "cycle {i}: {}", stderr(&o));
    }
    // Their veths go with their network namespaces, which the kernel frees in the background:
    // wait for that, so that the count below sees only the next 50.
    e.eventually(20, "the veths of the 200 runs to go", || {
        bridge_ports(&bridge).is_empty()
    });
    // 50 at once: every address different.
    let cmds: Vec<std::process::Command> = (0..50)
        .map(|_| e.cmd(&["run", "-d", "--network", "churn", "-p", "80", "busybox", "sleep", "60"]))
        .collect();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = cmds
            .into_iter()
            .map(|mut c| {
                s.spawn(move || {
                    let o = c.output().expect("run");
                    assert!(o.status.success(), "{}", stderr(&o));
                    common::stdout(&o).trim().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    e.all_ids();
    let mut addrs: Vec<String> = ids
        .iter()
        .map(|id| e.inspect(id, "{{.NetworkSettings.IPAddress}}"))
        .collect();
    let mut ports: Vec<String> = ids.iter().map(|id| e.ok(&["port", id, "80"])).collect();
    addrs.sort();
    addrs.dedup();
    ports.sort();
    ports.dedup();
    assert_eq!(addrs.len(), 50, "50 different addresses: {addrs:?}");
    assert_eq!(ports.len(), 50, "50 different host ports: {ports:?}");
    assert_eq!(bridge_ports(&bridge).len(), 50, "one veth each");
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    e.ok(&rm);
    // Nothing left: no lease (the network can go), no veth on the bridge (each went with its
    // network namespace), no DNAT rule.
    e.eventually(10, "the veths to go with their namespaces", || {
        bridge_ports(&bridge).is_empty()
    });
    let table = common::nft_table_with(&bridge).expect("the engine's table");
    let rules = common::nft_table_text(&table);
    assert!(!rules.contains("dnat to"), "DNAT rules left: {rules}");
    e.ok(&["network", "rm", "churn"]);
    e.assert_clean();
}

#[test]
fn containers_are_connected_to_and_disconnected_from_networks() {
    let e = Engine::new();
    let (front, back, third) = (subnet(40), subnet(41), subnet(42));
    let base = |s: &str| s.trim_end_matches(".0/24").to_string();
    for (s, n) in [(&front, "front"), (&back, "back"), (&third, "third")] {
        e.ok(&["network", "create", "--subnet", s, n]);
    }
    let serve = "mkdir -p /w && echo hi-web > /w/index.html && exec httpd -f -p 80 -h /w";
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        serve,
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "busybox",
        "sleep",
        "60",
    ]);
    let fetch = |target: &str| {
        e.lbox(&[
            "exec",
            "db",
            "sh",
            "-c",
            &format!("for i in 1 2 3 4 5; do wget -qO- http://{target}/ && exit 0; sleep 0.2; done; exit 1"),
        ])
    };
    // Not on back yet: db cannot resolve web.
    assert!(!fetch("web").status.success(), "web is not on back yet");
    e.ok(&["network", "connect", "--alias", "site", "back", "web"]);
    let addrs = e.ok(&["exec", "web", "ip", "-4", "-o", "addr"]);
    assert!(addrs.contains(&format!("eth1    inet {}.", base(&back))), "{addrs}");
    for name in ["web", "site"] {
        let o = fetch(name);
        assert_eq!(common::stdout(&o), "hi-web\n", "db reaches {name}: {}", stderr(&o));
    }
    assert_eq!(
        e.inspect("web", "{{json .NetworkSettings.Networks.back.Aliases}}"),
        "[\"site\"]"
    );
    assert_eq!(
        e.ok(&["ps", "-f", "name=web", "--format", "{{.Networks}}"]),
        "front,back"
    );
    let err = e.fails(&["network", "connect", "back", "web"], 125);
    assert!(err.contains("already connected"), "{err}");
    // Disconnected: the interface, the name and the lease go.
    e.ok(&["network", "disconnect", "back", "web"]);
    let addrs = e.ok(&["exec", "web", "ip", "-4", "-o", "addr"]);
    assert!(!addrs.contains("eth1"), "{addrs}");
    assert!(!e.ok(&["exec", "db", "cat", "/etc/hosts"]).contains("web"));
    let err = e.fails(&["network", "disconnect", "back", "web"], 125);
    assert!(err.contains("not connected"), "{err}");
    // A stopped container joins at its next start, with the address asked for.
    let want = format!("{}.50", base(&third));
    e.ok(&[
        "create",
        "--name",
        "later",
        "--network",
        "front",
        "busybox",
        "ip",
        "-4",
        "-o",
        "addr",
    ]);
    e.ok(&["network", "connect", "--ip", &want, "third", "later"]);
    let out = e.ok(&["start", "-a", "later"]);
    assert!(out.contains(&format!("eth1    inet {want}/24")), "{out}");
    let err = e.fails(&["network", "connect", "front", "--ip", "10.1.1.1", "db"], 125);
    assert!(err.contains("not in network front"), "{err}");
    e.ok(&["rm", "-f", "web", "db", "later"]);
    for n in ["front", "back", "third"] {
        e.ok(&["network", "rm", n]);
    }
    e.assert_clean();
}

fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

fn netns_of(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn network_namespaces_come_from_a_pool_and_are_never_shared() {
    let e = Engine::new();
    let ready = e.path("run/netns-pool/ready");
    let taken = e.path("run/netns-pool/taken");
    // The first run finds the pool empty; its removal fills it, in the background.
    e.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    e.eventually(10, "the pool to be filled", || entries(&ready).len() == 2);
    // Each is a real, fresh network namespace: only a loopback, and it is up.
    for entry in entries(&ready) {
        let o = std::process::Command::new("nsenter")
            .arg(format!("--net={}", entry.join("ns").display()))
            .args(["ip", "-o", "link", "show"])
            .output()
            .expect("nsenter");
        let links = common::stdout(&o);
        assert!(o.status.success(), "nsenter: {}", stderr(&o));
        assert_eq!(links.lines().count(), 1, "only a loopback: {links}");
        assert!(links.contains("lo:") && links.contains(",UP"), "loopback up: {links}");
    }
    // Two containers at once (one on a bridge): each its own namespace, neither the host's, and
    // claimed while they run.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    e.ok(&["run", "-d", "--name", "p2", "busybox", "sleep", "60"]);
    let (p1, p2) = (e.inspect("p1", "{{.State.Pid}}"), e.inspect("p2", "{{.State.Pid}}"));
    let host = std::fs::read_link("/proc/self/ns/net").expect("own netns");
    let (n1, n2) = (netns_of(&p1), netns_of(&p2));
    assert!(!n1.is_empty() && n1 != n2, "two namespaces: {n1} {n2}");
    assert!(n1 != host.to_string_lossy() && n2 != host.to_string_lossy());
    assert_eq!(entries(&taken).len(), 2, "both claimed while they run");
    let lo = e.ok(&["exec", "p1", "ip", "-o", "addr", "show", "lo"]);
    assert!(lo.contains("127.0.0.1"), "loopback addressed: {lo}");
    let eth = e.ok(&["exec", "p2", "ip", "-o", "-4", "addr", "show", "eth0"]);
    let addr = e.inspect("p2", "{{.NetworkSettings.IPAddress}}");
    assert!(
        eth.contains(&addr),
        "the bridge address {addr} in the pooled namespace: {eth}"
    );
    // Stopped: its claim goes at once.
    e.ok(&["stop", "-t", "0", "p1"]);
    assert_eq!(entries(&taken).len(), 1, "p1's claim released on exit");
    // Turned off, a start neither claims nor refills (once the starts above have refilled it).
    e.eventually(10, "the pool to be refilled", || entries(&ready).len() == 2);
    let before = entries(&ready);
    let o = e
        .cmd(&["run", "--rm", "--network", "none", "busybox", "true"])
        .env("LBOX_NETNS_POOL", "0")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(entries(&ready), before, "the pool untouched");
    e.ok(&["rm", "-f", "p1", "p2"]);
    e.assert_clean();
    // `system reset` takes the pool away, bind mounts and all.
    e.ok(&["system", "reset", "-f"]);
    assert!(!e.path("run/netns-pool").exists(), "the pool removed");
    assert_eq!(common::mounts_under(&e.path("run")), 0, "no bind mount left");
}
