//! One registry, spoken to over the distribution API: scheme chosen once, authentication on
//! demand (anonymous, Basic, or Bearer tokens per scope), retries for idempotent requests, and
//! registry errors turned into sentences.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use ureq::http::Response;
use ureq::Body;

use super::challenge::{self, encode};
use super::tls::{self, RegistryOptions};
use crate::auth::Credentials;
use crate::error::{Error, Result};

pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(PathBuf, u64),
}

pub struct Client {
    pub registry: String,
    host: String,
    secure_agent: ureq::Agent,
    insecure_agent: Option<ureq::Agent>,
    base: Mutex<Option<(String, bool)>>,
    creds: Option<Credentials>,
    tokens: Mutex<HashMap<String, String>>,
    basic: Mutex<bool>,
}

pub type Resp = Response<Body>;

fn transport(registry: &str, e: ureq::Error) -> Error {
    Error::Registry {
        registry: registry.to_string(),
        message: format!("cannot connect: {e}"),
    }
}

impl Client {
    pub fn new(registry: &str, api_host: &str, opts: &RegistryOptions, creds: Option<Credentials>) -> Result<Client> {
        let insecure = opts.is_insecure(registry);
        let verify = opts.tls_verify != Some(false);
        Ok(Client {
            registry: registry.to_string(),
            host: api_host.to_string(),
            secure_agent: tls::agent(registry, opts, verify)?,
            insecure_agent: if insecure {
                Some(tls::agent(registry, opts, false)?)
            } else {
                None
            },
            base: Mutex::new(None),
            creds,
            tokens: Mutex::new(HashMap::new()),
            basic: Mutex::new(false),
        })
    }

    /// `https://host`, or for an insecure registry whatever answers: HTTPS first, then HTTP.
    fn base(&self) -> Result<(String, ureq::Agent)> {
        let mut b = self.base.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((url, plain)) = &*b {
            let agent = if *plain { self.insecure_agent.clone() } else { None }.unwrap_or(self.secure_agent.clone());
            return Ok((url.clone(), agent));
        }
        let https = format!("https://{}", self.host);
        let Some(insecure) = &self.insecure_agent else {
            *b = Some((https.clone(), false));
            return Ok((https, self.secure_agent.clone()));
        };
        let chosen = match insecure.get(format!("{https}/v2/")).call() {
            Ok(_) => (https, false),
            Err(_) => (format!("http://{}", self.host), true),
        };
        *b = Some(chosen.clone());
        Ok((chosen.0, insecure.clone()))
    }

    pub fn url(&self, path: &str) -> Result<String> {
        Ok(format!("{}{path}", self.base()?.0))
    }

    fn auth_header(&self, scope: &str) -> Option<String> {
        if let Some(t) = self.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(scope) {
            return Some(format!("Bearer {t}"));
        }
        if *self.basic.lock().unwrap_or_else(|p| p.into_inner()) {
            return self.creds.as_ref().map(basic);
        }
        None
    }

    /// Send a request, authenticating when challenged. `url` is absolute or a path below the base.
    pub fn send(&self, method: &str, url: &str, scope: &str, headers: &[(&str, &str)], body: &Payload) -> Result<Resp> {
        let (base, agent) = self.base()?;
        let url = if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{base}{url}")
        };
        let idempotent = matches!(method, "GET" | "HEAD");
        let mut authed = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let r = self.once(&agent, method, &url, scope, headers, body);
            let resp = match r {
                Ok(resp) => resp,
                Err(e) if idempotent && attempt < 4 => {
                    std::thread::sleep(Duration::from_millis(200 * attempt));
                    let _ = e;
                    continue;
                }
                Err(e) => return Err(transport(&self.registry, e)),
            };
            let status = resp.status().as_u16();
            if status == 401 && !authed {
                authed = true;
                let header = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                self.authenticate(header.as_deref(), scope)?;
                continue;
            }
            if status >= 500 && idempotent && attempt < 4 {
                std::thread::sleep(Duration::from_millis(200 * attempt));
                continue;
            }
            return Ok(resp);
        }
    }

    fn once(
        &self,
        agent: &ureq::Agent,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        body: &Payload,
    ) -> std::result::Result<Resp, ureq::Error> {
        let mut req = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = self.auth_header(scope) {
            req = req.header("Authorization", a);
        }
        match body {
            Payload::Empty => {
                let req = req.body(()).map_err(|e| ureq::Error::BadUri(e.to_string()))?;
                agent.run(req)
            }
            Payload::Bytes(b) => {
                let req = req.body(b.to_vec()).map_err(|e| ureq::Error::BadUri(e.to_string()))?;
                agent.run(req)
            }
            Payload::File(p, size) => {
                let f = std::fs::File::open(p).map_err(ureq::Error::Io)?;
                let req = req
                    .header("Content-Length", size.to_string())
                    .body(f)
                    .map_err(|e| ureq::Error::BadUri(e.to_string()))?;
                agent.run(req)
            }
        }
    }

    fn authenticate(&self, header: Option<&str>, scope: &str) -> Result<()> {
        let auth_err = |m: String| Error::Auth(self.registry.clone(), m);
        let c = header
            .and_then(challenge::parse)
            .ok_or_else(|| auth_err("the registry asked for credentials without saying how".into()))?;
        match c.scheme.as_str() {
            "basic" => {
                if self.creds.is_none() {
                    return Err(auth_err(format!(
                        "credentials required; log in with: lbox login {}",
                        self.registry
                    )));
                }
                *self.basic.lock().unwrap_or_else(|p| p.into_inner()) = true;
                Ok(())
            }
            "bearer" => {
                let token = self.fetch_token(&c, scope)?;
                self.tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(scope.to_string(), token);
                Ok(())
            }
            other => Err(auth_err(format!("unsupported authentication scheme {other:?}"))),
        }
    }

    fn fetch_token(&self, c: &challenge::Challenge, scope: &str) -> Result<String> {
        let auth_err = |m: String| Error::Auth(self.registry.clone(), m);
        let realm = c
            .params
            .get("realm")
            .ok_or_else(|| auth_err("token challenge without a realm".into()))?;
        let mut url = realm.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = c.params.get("service") {
            url.push_str(&format!("{sep}service={}", encode(s)));
            sep = '&';
        }
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            url.push_str(&format!("{sep}scope={}", encode(s)));
            sep = '&';
        }
        let agent = self.insecure_agent.clone().unwrap_or(self.secure_agent.clone());
        let mut req = agent.get(&url);
        if let Some(cr) = &self.creds {
            req = req.header("Authorization", basic(cr));
        }
        let mut resp = req
            .call()
            .map_err(|e| auth_err(format!("token service {realm}: {e}")))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(auth_err(match &self.creds {
                Some(_) => "the token service refused the credentials (wrong username or password?)".into(),
                None => format!("access denied; log in with: lbox login {}", self.registry),
            }));
        }
        if status != 200 {
            return Err(auth_err(format!("token service {realm} answered HTTP {status}")));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| auth_err(format!("token service {realm}: {e}")))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| auth_err(format!("token service {realm}: bad answer: {e}")))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| auth_err(format!("token service {realm} returned no token")))
    }

    /// A readable error for a failed response: the registry's own codes and messages if it sent them.
    pub fn error(&self, what: &str, mut resp: Resp) -> Error {
        let status = resp.status().as_u16();
        let mut body = String::new();
        let _ = resp.body_mut().as_reader().take(64 * 1024).read_to_string(&mut body);
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
            .map(|errs| {
                errs.iter()
                    .map(|e| {
                        let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                        let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                        format!("{code}: {msg}")
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let message = match status {
            401 | 403 => format!(
                "{what}: access denied (HTTP {status}); log in with: lbox login {}",
                self.registry
            ),
            404 => format!(
                "{what}: not found (HTTP 404{})",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(", {detail}")
                }
            ),
            _ => format!(
                "{what}: HTTP {status}{}",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(", {detail}")
                }
            ),
        };
        Error::Registry {
            registry: self.registry.clone(),
            message,
        }
    }
}

fn basic(c: &Credentials) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}
