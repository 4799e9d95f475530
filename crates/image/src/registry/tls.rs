//! Which registries are trusted how: HTTPS with the system's CAs plus any `ca.crt` dropped in a
//! certs.d directory for that registry (Docker's and Podman's layout); plain HTTP or unverified
//! HTTPS only for loopback, registries listed as insecure, or `--tls-verify=false`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::error::{Error, Result};

const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// `--tls-verify`: Some(false) allows HTTP and unverified HTTPS for this command.
    pub tls_verify: Option<bool>,
    /// Registries (host[:port]) the configuration marks insecure.
    pub insecure: Vec<String>,
    /// Directories holding `<registry>/*.crt` CA files; defaults when empty.
    pub certs_dirs: Vec<PathBuf>,
}

#[derive(serde::Deserialize, Default)]
struct RegistriesConf {
    #[serde(default)]
    insecure: Vec<String>,
}

impl RegistryOptions {
    /// Defaults plus `/etc/lbox/registries.toml` (or `$LBOX_REGISTRIES_CONF`): `insecure = ["host:port"]`.
    pub fn from_config() -> Result<RegistryOptions> {
        let path = std::env::var_os("LBOX_REGISTRIES_CONF")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/lbox/registries.toml"));
        let conf: RegistriesConf = match std::fs::read_to_string(&path) {
            Ok(s) => toml::from_str(&s).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RegistriesConf::default(),
            Err(e) => return Err(Error::Path { path, source: e }),
        };
        Ok(RegistryOptions {
            insecure: conf.insecure,
            ..Default::default()
        })
    }

    fn cert_dirs(&self) -> Vec<PathBuf> {
        if !self.certs_dirs.is_empty() {
            return self.certs_dirs.clone();
        }
        let mut v: Vec<PathBuf> = std::env::var_os("LBOX_CERTS_DIR")
            .map(PathBuf::from)
            .into_iter()
            .collect();
        v.extend(["/etc/lbox/certs.d", "/etc/containers/certs.d", "/etc/docker/certs.d"].map(PathBuf::from));
        v
    }

    /// Loopback registries and listed ones may use plain HTTP, as Docker allows.
    pub fn is_insecure(&self, registry: &str) -> bool {
        match self.tls_verify {
            Some(false) => return true,
            // Asked for explicitly: verified HTTPS even on loopback.
            Some(true) => return false,
            None => {}
        }
        if self.insecure.iter().any(|i| i == registry) {
            return true;
        }
        let host = registry.rsplit_once(':').map(|(h, _)| h).unwrap_or(registry);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

fn pem_certs(path: &Path, out: &mut Vec<Certificate<'static>>) -> Result<()> {
    let data = std::fs::read(path).map_err(Error::path(path))?;
    for item in ureq::tls::parse_pem(&data) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => return Err(Error::Invalid(format!("{}: bad PEM certificate: {e}", path.display()))),
        }
    }
    Ok(())
}

/// An HTTP agent for one registry.
pub fn agent(registry: &str, opts: &RegistryOptions, verify: bool) -> Result<ureq::Agent> {
    let mut extra = Vec::new();
    for dir in opts.cert_dirs() {
        let d = dir.join(registry);
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "crt") {
                pem_certs(&e.path(), &mut extra)?;
            }
        }
    }
    let roots = if extra.is_empty() && !Path::new(SYSTEM_BUNDLE).exists() {
        RootCerts::WebPki
    } else {
        if Path::new(SYSTEM_BUNDLE).exists() {
            pem_certs(Path::new(SYSTEM_BUNDLE), &mut extra)?;
        }
        RootCerts::Specific(Arc::new(extra))
    };
    let tls = TlsConfig::builder()
        .root_certs(roots)
        .disable_verification(!verify)
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(5)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .user_agent(format!("lbox/{}", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(config.into())
}
