//! Registry credentials in the docker `config.json` format. LockBox writes its own file (mode
//! 0600); it also reads `~/.docker/config.json`, so a `docker login` works here too. Passwords are
//! never logged or printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials {{ username: {:?}, password: <redacted> }}",
            self.username
        )
    }
}

/// LockBox's own auth file: `$LBOX_AUTH_FILE`, else `$XDG_CONFIG_HOME/lbox/auth.json`
/// (`~/.config/lbox/auth.json`).
pub fn auth_file() -> PathBuf {
    if let Some(p) = std::env::var_os("LBOX_AUTH_FILE") {
        return PathBuf::from(p);
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/root/.config"));
    config.join("lbox/auth.json")
}

fn docker_file() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Docker Hub's credentials are filed under its old v1 URL.
fn keys(registry: &str) -> Vec<String> {
    if registry == crate::reference::DOCKER_HUB {
        vec![
            "https://index.docker.io/v1/".into(),
            "docker.io".into(),
            "index.docker.io".into(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    }
}

fn read(path: &Path) -> Result<AuthFile> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::Invalid(format!("{}: not a valid auth file: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(e) => Err(Error::Path {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn decode(entry: &AuthEntry) -> Option<Credentials> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_ref()?.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

/// Credentials for `registry`, from LockBox's file first, then Docker's.
pub fn lookup(registry: &str) -> Result<Option<Credentials>> {
    let mut files = vec![auth_file()];
    files.extend(docker_file());
    for f in files {
        let af = read(&f)?;
        for k in keys(registry) {
            if let Some(c) = af.auths.get(&k).and_then(decode) {
                return Ok(Some(c));
            }
        }
    }
    Ok(None)
}

fn write(path: &Path, af: &AuthFile) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::path(dir))?;
    }
    let tmp = path.with_extension("json.tmp");
    let data = serde_json::to_vec_pretty(af).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(Error::path(&tmp))?;
    f.write_all(&data).map_err(Error::path(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::path(path))
}

pub fn store(registry: &str, c: &Credentials) -> Result<()> {
    let path = auth_file();
    let mut af = read(&path)?;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    let key = keys(registry).remove(0);
    af.auths.insert(
        key,
        AuthEntry {
            auth: Some(token),
            other: BTreeMap::new(),
        },
    );
    write(&path, &af)
}

/// Forget `registry`'s credentials in LockBox's file; false if there were none.
pub fn remove(registry: &str) -> Result<bool> {
    let path = auth_file();
    let mut af = read(&path)?;
    let mut found = false;
    for k in keys(registry) {
        found |= af.auths.remove(&k).is_some();
    }
    if found {
        write(&path, &af)?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_docker_entries() {
        let e = AuthEntry {
            auth: Some("dXNlcjpwYTpzcw==".into()),
            other: BTreeMap::new(),
        };
        assert_eq!(
            decode(&e),
            Some(Credentials {
                username: "user".into(),
                password: "pa:ss".into()
            })
        );
        assert!(format!("{:?}", decode(&e).unwrap()).contains("redacted"));
        assert_eq!(keys("docker.io")[0], "https://index.docker.io/v1/");
    }
}
