//! Bridges and veth pairs for real (root): two network namespaces of the test's own joined to a
//! bridge of the test's own, reaching each other; and nothing left behind, even after a failure.

use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use network::link::{connect, Attachment, Netlink};

/// A process in a new network namespace, which lives as long as it does.
struct Netns {
    child: Child,
    fd: OwnedFd,
}

impl Netns {
    fn new() -> Netns {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "120"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare --net (util-linux)");
        let path = format!("/proc/{}/ns/net", child.id());
        // unshare execs sleep once the namespace is made: wait until it differs from ours.
        let ours = std::fs::read_link("/proc/self/ns/net").expect("own netns");
        for _ in 0..200 {
            if std::fs::read_link(&path).is_ok_and(|l| l != ours) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let fd = std::fs::File::open(&path).expect("netns").into();
        Netns { child, fd }
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let o = Command::new("nsenter")
            .arg("-t")
            .arg(self.child.id().to_string())
            .arg("-n")
            .args(args)
            .output()
            .expect("nsenter");
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_namespaces_on_a_bridge_reach_each_other_and_nothing_is_left() {
    let tag = std::process::id() % 100_000;
    let (bridge, h1, h2) = (format!("lbt{tag}"), format!("lbt{tag}a"), format!("lbt{tag}b"));
    let third = (tag % 200) as u8 + 20;
    let gw = std::net::Ipv4Addr::new(10, 250, third, 1);
    let nl = Netlink::open().expect("netlink");
    nl.ensure_bridge(&bridge, gw, 24).expect("bridge");
    nl.ensure_bridge(&bridge, gw, 24).expect("a second ensure is a no-op");
    let (a, b) = (Netns::new(), Netns::new());
    let attach = |host_if: &str, last: u8| Attachment {
        bridge: &bridge,
        host_if: Box::leak(host_if.to_string().into_boxed_str()),
        ifname: "eth0",
        addr: std::net::Ipv4Addr::new(10, 250, third, last),
        prefix: 24,
        gateway: Some(gw),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        connect(&nl, a.fd.as_fd(), &attach(&h1, 2)).expect("connect a");
        connect(&nl, b.fd.as_fd(), &attach(&h2, 3)).expect("connect b");
        let (ok, addr) = a.run(&["ip", "-4", "-o", "addr", "show", "eth0"]);
        assert!(ok && addr.contains(&format!("10.250.{third}.2/24")), "{addr}");
        let (_, routes) = a.run(&["ip", "-4", "route"]);
        assert!(
            routes.contains(&format!("default via 10.250.{third}.1 dev eth0")),
            "{routes}"
        );
        let (ok, lo) = a.run(&["ip", "-o", "link", "show", "lo"]);
        assert!(ok && lo.contains("UP"), "{lo}");
        // Traffic between the test's own namespaces only.
        let (ok, out) = a.run(&["busybox", "ping", "-c", "1", "-W", "3", &format!("10.250.{third}.3")]);
        assert!(ok, "a reaches b: {out}");
        // A failed connect (no such bridge) leaves no veth.
        let c = Netns::new();
        let bad = Attachment {
            bridge: "lbt-nosuchbr",
            ..attach(&format!("lbt{tag}c"), 4)
        };
        let err = connect(&nl, c.fd.as_fd(), &bad).unwrap_err();
        assert!(err.to_string().contains("lbt-nosuchbr"), "{err}");
        assert_eq!(nl.index(&format!("lbt{tag}c")).expect("index"), None);
    }));
    nl.delete(&h1).expect("delete veth");
    nl.delete(&h2).expect("delete veth");
    nl.delete(&bridge).expect("delete bridge");
    nl.delete(&bridge).expect("deleting twice is fine");
    for name in [&bridge, &h1, &h2] {
        assert_eq!(nl.index(name).expect("index"), None, "{name} left behind");
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
