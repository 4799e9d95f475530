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
