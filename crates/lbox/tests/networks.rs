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
    let bridge = e.ok(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
        "front",
    ]);
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
    let b2 = e.ok(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
        "p1",
    ]);
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
        .contains("needs a user network"));
    assert_eq!(e.ok(&["ps", "-aq"]).lines().count(), 2, "web and filler only");
    let ids: Vec<String> = ["web", "filler"].iter().map(|n| e.inspect(n, "{{.Id}}")).collect();
    e.ok(&["rm", "-f", "web", "filler"]);
    // The kernel deletes each veth pair with its container's network namespace, asynchronously.
    for id in &ids {
        let veth = format!("lv{}", &id[..12]);
        e.eventually(10, &format!("veth {veth} to go"), || !bridge_exists(&veth));
    }
    e.ok(&["network", "rm", "app"]);
    e.assert_clean();
}

/// The nftables table whose rules name `bridge`, if any.
fn nft_table_with(bridge: &str) -> Option<String> {
    let out = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut table = None;
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("table ip ") {
            table = Some(t.trim_end_matches(" {").to_string());
        }
        if line.contains(bridge) {
            return table;
        }
    }
    None
}

#[test]
fn networks_are_isolated_and_internal_ones_have_no_way_out() {
    let e = Engine::new();
    let (s1, s2, s3) = (subnet(20), subnet(21), subnet(22));
    let gw = |s: &str| s.replace(".0/24", ".1");
    e.ok(&["network", "create", "--subnet", &s1, "one"]);
    e.ok(&["network", "create", "--subnet", &s2, "two"]);
    e.ok(&["network", "create", "--internal", "--subnet", &s3, "closed"]);
    let bridge = e.ok(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
        "one",
    ]);
    let table = nft_table_with(&bridge).expect("the networks' rules are in an nftables table");
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
