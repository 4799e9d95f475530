//! Registries for the image tests: Debian's docker-registry on 127.0.0.1 (optionally with
//! htpasswd basic auth or TLS from a CA made here), and a tiny scripted HTTP server that serves
//! whatever a test wants — including broken blobs no real registry would keep.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

#[derive(Default)]
pub struct RegistryOpts {
    pub basic_auth: Option<(String, String)>,
    pub tls: bool,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run helper");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Registry {
    pub fn start(opts: RegistryOpts) -> Registry {
        let dir = tempfile::Builder::new().prefix("lbox-reg-").tempdir().expect("tempdir");
        let port = free_port();
        let mut conf = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if opts.tls {
            make_certs(dir.path());
            conf.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.crt").display(),
                dir.path().join("server.key").display()
            ));
        }
        if let Some((u, p)) = &opts.basic_auth {
            let htpasswd = dir.path().join("htpasswd");
            run(Command::new("htpasswd").args(["-Bbc"]).arg(&htpasswd).args([u, p]));
            conf.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: lbox-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, conf).expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry must be installed");
        let r = Registry { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A certs.d-style directory holding this registry's CA (for LBOX_CERTS_DIR / --cert-dir).
    pub fn certs_dir(&self) -> PathBuf {
        let d = self.dir.path().join("certs.d");
        std::fs::create_dir_all(d.join(self.host())).expect("mkdir");
        std::fs::copy(self.dir.path().join("ca.crt"), d.join(self.host()).join("ca.crt")).expect("copy ca");
        d
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn make_certs(dir: &Path) {
    let p = |n: &str| dir.join(n);
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=lbox test CA",
        ])
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt")));
    run(Command::new("openssl")
        .args(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"])
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")));
    std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-extfile")
        .arg(p("ext.cnf"))
        .arg("-out")
        .arg(p("server.crt")));
}

/// How the scripted server answers one path.
#[derive(Clone)]
pub struct Route {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    /// Claim this Content-Length (to simulate a connection cut mid-blob).
    pub claimed_len: Option<usize>,
    /// Pause after each 64 KiB.
    pub delay: Option<Duration>,
}

impl Route {
    pub fn ok(content_type: &str, body: Vec<u8>) -> Route {
        Route {
            status: 200,
            content_type: content_type.into(),
            body,
            claimed_len: None,
            delay: None,
        }
    }
}

pub struct Scripted {
    pub port: u16,
    pub routes: Arc<Mutex<HashMap<String, Route>>>,
}

impl Scripted {
    pub fn start() -> Scripted {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let r2 = routes.clone();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let routes = r2.clone();
                std::thread::spawn(move || serve(conn, &routes));
            }
        });
        Scripted { port, routes }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn set(&self, path: &str, r: Route) {
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_string(), r);
    }
}

fn serve(conn: TcpStream, routes: &Mutex<HashMap<String, Route>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut w = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").split('?').next().unwrap_or("").to_string();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
        }
        let route = routes.lock().unwrap_or_else(|e| e.into_inner()).get(&path).cloned();
        let r = route.unwrap_or(Route {
            status: 404,
            content_type: "application/json".into(),
            body: br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#.to_vec(),
            claimed_len: None,
            delay: None,
        });
        let len = r.claimed_len.unwrap_or(r.body.len());
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {len}\r\nDocker-Distribution-API-Version: registry/2.0\r\n\r\n",
            r.status, r.content_type
        );
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method != "HEAD" {
            for chunk in r.body.chunks(64 * 1024) {
                if w.write_all(chunk).is_err() {
                    return;
                }
                if let Some(d) = r.delay {
                    std::thread::sleep(d);
                }
            }
        }
        if r.claimed_len.is_some() {
            // Cut the connection short of what was promised.
            return;
        }
    }
}
