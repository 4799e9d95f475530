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
    /// (realm URL, certificate of the token signer)
    pub token: Option<(String, PathBuf)>,
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
        if let Some((realm, cert)) = &opts.token {
            conf.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: lbox-registry\n    issuer: lbox-test-issuer\n    rootcertbundle: {}\n",
                cert.display()
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

/// A self-signed certificate (a CA, or a token signer) and its key, made with openssl.
fn self_signed(subject: &str, key: &Path, cert: &Path) {
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
        ])
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert));
}

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn make_certs(dir: &Path) {
    let p = |n: &str| dir.join(n);
    self_signed("/CN=lbox test CA", &p("ca.key"), &p("ca.crt"));
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
    /// Answer 503 this many times before serving the route.
    pub fail_first: Arc<std::sync::atomic::AtomicUsize>,
}

impl Route {
    pub fn ok(content_type: &str, body: Vec<u8>) -> Route {
        Route {
            status: 200,
            content_type: content_type.into(),
            body,
            claimed_len: None,
            delay: None,
            fail_first: Arc::default(),
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
        let mut r = route.unwrap_or(Route {
            status: 404,
            content_type: "application/json".into(),
            body: br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#.to_vec(),
            claimed_len: None,
            delay: None,
            fail_first: Arc::default(),
        });
        let failing = r
            .fail_first
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if failing {
            r = Route {
                status: 503,
                body: b"busy".to_vec(),
                claimed_len: None,
                delay: None,
                ..r
            };
        }
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

/// A token service for docker-registry's `auth: token` mode: it signs RS256 JWTs (with openssl)
/// carrying an x5c certificate the registry trusts, and grants what is asked to one user.
pub struct TokenServer {
    pub port: u16,
    pub cert: PathBuf,
}

fn b64(data: &[u8], url: bool) -> String {
    use base64::Engine;
    if url {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
    } else {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TokenServer {
    pub fn start(dir: &Path, user: &str, password: &str) -> TokenServer {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        self_signed("/CN=lbox token", &key, &cert);
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl");
        let x5c = b64(&der.stdout, false);
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let expected = format!("Basic {}", b64(format!("{user}:{password}").as_bytes(), false));
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let (key, x5c, expected) = (key.clone(), x5c.clone(), expected.clone());
                std::thread::spawn(move || token_reply(conn, &key, &x5c, &expected));
            }
        });
        TokenServer { port, cert }
    }
}

fn token_reply(conn: TcpStream, key: &Path, x5c: &str, expected: &str) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut w = conn;
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_string());
            }
        }
    }
    let target = line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut service = String::new();
    let mut access = Vec::new();
    for kv in query.split('&') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = url_decode(v);
        match k {
            "service" => service = v,
            "scope" => {
                let parts: Vec<&str> = v.splitn(3, ':').collect();
                if let [kind, name, actions] = parts.as_slice() {
                    access.push(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}));
                }
            }
            _ => {}
        }
    }
    let (status, body) = match auth.as_deref() {
        Some(a) if a == expected => (200, None),
        Some(_) => (401, Some(r#"{"details":"wrong credentials"}"#.to_string())),
        // Anonymous callers get a token that grants nothing.
        None => {
            access.clear();
            (200, None)
        }
    };
    let body = body.unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
        let claims = serde_json::json!({
            "iss": "lbox-test-issuer", "sub": "alice", "aud": service, "exp": now + 600, "nbf": now - 60,
            "iat": now, "jti": format!("{now}-{}", std::process::id()), "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes(), true),
            b64(claims.to_string().as_bytes(), true)
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(signing_input.as_bytes())
            .expect("write");
        let sig = child.wait_with_output().expect("sign").stdout;
        let jwt = format!("{signing_input}.{}", b64(&sig, true));
        serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 600}).to_string()
    });
    let _ = write!(
        w,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
