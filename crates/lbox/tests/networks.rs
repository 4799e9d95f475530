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
    for id in &ids {
        assert!(!bridge_exists(&format!("lv{}", &id[..12])), "veth of {id} left");
    }
    e.ok(&["network", "rm", "app"]);
    e.assert_clean();
}
