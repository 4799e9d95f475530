//! Published ports and the default network end to end: TCP and UDP ports answering on 127.0.0.1
//! and on the host's own address, a port in use refused before the container starts, `lbox
//! port`, and the DNAT rules gone with the container. All traffic stays on this host.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::engine::Engine;

/// A host port free for TCP and UDP right now.
fn free_port() -> u16 {
    loop {
        let t = TcpListener::bind("0.0.0.0:0").expect("bind");
        let p = t.local_addr().expect("addr").port();
        if UdpSocket::bind(("0.0.0.0", p)).is_ok() {
            return p;
        }
    }
}

/// The host's first global IPv4 address, if it has one.
fn host_address() -> Option<Ipv4Addr> {
    let o = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.split('/').next()?.parse().ok())
        .find(|a: &Ipv4Addr| !a.is_loopback())
}

/// GET / over TCP, retried while the server starts.
fn http_get(addr: (Ipv4Addr, u16)) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match got {
            Ok(body) if body.contains("200 OK") => return body,
            _ if std::time::Instant::now() > end => panic!("no HTTP answer from {addr:?}: {got:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Send a datagram and wait for its echo.
fn udp_echo(addr: (Ipv4Addr, u16)) -> bool {
    let s = UdpSocket::bind("0.0.0.0:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    for _ in 0..20 {
        let _ = s.send_to(b"ping", addr);
        let mut buf = [0u8; 16];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return &buf[..n] == b"ping";
        }
    }
    false
}

/// A static UDP echo server (busybox has none): compiled here with the C compiler the build
/// already needs.
fn udp_echo_server(e: &Engine) -> String {
    let src = e.path("udpecho.c");
    std::fs::write(
        &src,
        r#"#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int c, char **v) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(v[1]))};
    if (c < 2 || bind(s, (struct sockaddr *)&a, sizeof a)) return 1;
    for (;;) {
        char b[512]; struct sockaddr_in p; socklen_t l = sizeof p;
        ssize_t n = recvfrom(s, b, sizeof b, 0, (struct sockaddr *)&p, &l);
        if (n > 0) sendto(s, b, n, 0, (struct sockaddr *)&p, l);
    }
}
"#,
    )
    .expect("write source");
    let bin = e.path("udpecho");
    let st = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("cc");
    assert!(st.success(), "cc -static udpecho.c");
    bin.display().to_string()
}

/// The rules of the engine's nftables table (the one naming its default network's bridge).
fn table_of(e: &Engine) -> String {
    common::nft_table_with(&e.bridge_of("bridge"))
        .map(|t| common::nft_table_text(&t))
        .unwrap_or_default()
}

#[test]
fn published_tcp_and_udp_ports_answer_on_loopback_and_the_hosts_address() {
    let e = Engine::new();
    let udpecho = udp_echo_server(&e);
    let (tcp, udp) = (free_port(), free_port());
    let serve = "mkdir -p /www && echo hello-published > /www/index.html && exec httpd -f -p 80 -h /www";
    let mount = format!("{udpecho}:/udpecho:ro");
    e.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{tcp}:80"),
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        serve,
    ]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "echo",
        "-v",
        &mount,
        "-p",
        &format!("{udp}:53/udp"),
        "busybox",
        "/udpecho",
        "53",
    ]);
    // `lbox port`, ps and inspect agree on the bindings.
    let ports = e.ok(&["port", "web"]);
    let any = ports
        .lines()
        .find_map(|l| l.strip_prefix("80/tcp -> 127.0.0.1:"))
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("a free loopback port for -p 127.0.0.1::80: {ports}"));
    assert!(ports.contains(&format!("80/tcp -> 0.0.0.0:{tcp}")), "{ports}");
    assert_eq!(e.ok(&["port", "echo", "53/udp"]), format!("0.0.0.0:{udp}"));
    let err = e.fails(&["port", "echo", "54/udp"], 1);
    assert!(err.contains("no public port '54/udp'"), "{err}");
    let ps = e.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert!(ps.contains(&format!("0.0.0.0:{udp}->53/udp")), "{ps}");
    assert_eq!(
        e.inspect(
            "web",
            "{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}"
        ),
        tcp.to_string()
    );
    // Traffic: loopback, the loopback-only binding, and the host's own address.
    assert!(http_get((Ipv4Addr::LOCALHOST, tcp)).contains("hello-published"));
    assert!(http_get((Ipv4Addr::LOCALHOST, any)).contains("hello-published"));
    assert!(udp_echo((Ipv4Addr::LOCALHOST, udp)), "UDP on 127.0.0.1");
    match host_address() {
        Some(ip) => {
            assert!(http_get((ip, tcp)).contains("hello-published"), "TCP on {ip}");
            assert!(udp_echo((ip, udp)), "UDP on {ip}");
            // From containers: on web's own network (hairpin) and on another network.
            let subnet = format!("10.251.{}.0/24", std::process::id() % 250);
            e.ok(&["network", "create", "--subnet", &subnet, "elsewhere"]);
            let fetch = format!("wget -qO- http://{ip}:{tcp}/");
            for net in ["bridge", "elsewhere"] {
                let out = e.ok(&["run", "--rm", "--network", net, "busybox", "sh", "-c", &fetch]);
                assert!(out.contains("hello-published"), "from {net}: {out}");
            }
        }
        None => eprintln!("no global IPv4 address on this host: the host-address part is skipped"),
    }
    // The host ports are held: another container and a host process are refused.
    let err = e.fails(
        &[
            "run",
            "-d",
            "--name",
            "clash",
            "-p",
            &format!("{tcp}:81"),
            "busybox",
            "sleep",
            "9",
        ],
        125,
    );
    assert!(
        err.contains(&format!("host port 0.0.0.0:{tcp}/tcp is already in use")),
        "{err}"
    );
    assert!(
        TcpListener::bind(("0.0.0.0", tcp)).is_err(),
        "the port is held while web runs"
    );
    assert!(table_of(&e).contains(&format!("tcp dport {tcp} dnat to")));
    // Gone with the containers: rules, and the ports are free again.
    e.ok(&["rm", "-f", "web", "echo", "clash"]);
    let _ = e.lbox(&["network", "rm", "elsewhere"]);
    let rules = table_of(&e);
    assert!(!rules.contains("dnat to"), "DNAT rules left: {rules}");
    assert!(TcpListener::bind(("0.0.0.0", tcp)).is_ok(), "port {tcp} free again");
    assert!(UdpSocket::bind(("0.0.0.0", udp)).is_ok(), "port {udp} free again");
    e.assert_clean();
}

#[test]
fn port_flags_are_checked_before_anything_is_made() {
    let e = Engine::new();
    for (flag, want) in [
        ("70000:80", "invalid host port"),
        ("80/sctp", "invalid protocol"),
        ("1-3:80", "differ in size"),
        ("nope:1:2", "invalid host address"),
    ] {
        let err = e.fails(&["run", "--rm", "-p", flag, "busybox", "true"], 125);
        assert!(err.contains(want), "-p {flag}: {err}");
    }
    let err = e.fails(
        &["run", "--rm", "--network", "none", "-p", "80", "busybox", "true"],
        125,
    );
    assert!(err.contains("--network none has none"), "{err}");
    // Not a local address: refused at start, nothing left running.
    let err = e.fails(&["run", "--rm", "-p", "192.0.2.254:8080:80", "busybox", "true"], 125);
    assert!(err.contains("not an address of this host"), "{err}");
    assert!(e.all_ids().is_empty(), "--rm containers are gone");
    e.assert_clean();
}

#[test]
fn containers_join_the_default_network_with_hosts_and_dns_flags() {
    let e = Engine::new();
    let out = e.ok(&[
        "run",
        "--rm",
        "--add-host",
        "db:192.0.2.10",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.test",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; cat /etc/hosts /etc/resolv.conf",
    ]);
    let gateway = e.ok(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        "bridge",
    ]);
    assert!(out.contains("eth0"), "on the default network: {out}");
    assert!(out.contains("192.0.2.10\tdb"), "{out}");
    assert!(
        out.contains(&format!("{gateway}\tgw")),
        "host-gateway is the gateway {gateway}: {out}"
    );
    assert!(
        out.contains("nameserver 192.0.2.53") && out.contains("search example.test"),
        "{out}"
    );
    // none: loopback only.
    let out = e.ok(&["run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"]);
    assert!(!out.contains("eth0"), "{out}");
    // The default network is not removed, and gives no names of other containers (Docker's).
    e.ok(&["run", "-d", "--name", "quiet", "busybox", "sleep", "30"]);
    let hosts = e.ok(&["run", "--rm", "busybox", "cat", "/etc/hosts"]);
    assert!(!hosts.contains("quiet"), "{hosts}");
    let err = e.fails(&["network", "rm", "bridge"], 1);
    assert!(err.contains("pre-defined network"), "{err}");
    let err = e.fails(&["network", "create", "bridge"], 125);
    assert!(err.contains("reserved"), "{err}");
    let err = e.fails(&["run", "--rm", "--ip", "10.1.2.3", "busybox", "true"], 125);
    assert!(err.contains("user-defined network"), "{err}");
    e.ok(&["rm", "-f", "quiet"]);
    e.assert_clean();
}

#[test]
fn a_container_can_share_another_containers_network() {
    let e = Engine::new();
    let serve = "mkdir -p /w && echo shared > /w/index.html && exec httpd -f -p 8080 -h /w";
    e.ok(&["run", "-d", "--name", "first", "busybox", "sh", "-c", serve]);
    let ip = e.inspect("first", "{{.NetworkSettings.IPAddress}}");
    // The joiner has first's address and reaches first's server on its own loopback.
    let out = e.ok(&[
        "run",
        "--rm",
        "--network",
        "container:first",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.2; done; exit 1",
    ]);
    assert!(out.contains(&format!("inet {ip}/")), "first's address {ip}: {out}");
    assert!(out.contains("shared"), "{out}");
    let err = e.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:first",
            "-p",
            "80",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("conflicting options: -p/-P"), "{err}");
    let err = e.fails(
        &["run", "--rm", "--network", "container:nosuch", "busybox", "true"],
        125,
    );
    assert!(err.contains("nosuch"), "{err}");
    e.ok(&["create", "--name", "idle", "busybox", "true"]);
    let err = e.fails(&["run", "--rm", "--network", "container:idle", "busybox", "true"], 125);
    assert!(err.contains("not running"), "{err}");
    e.ok(&["rm", "-f", "first", "idle"]);
    e.assert_clean();
}
