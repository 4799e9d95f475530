//! Image references, normalised the way Docker does: `alpine` is `docker.io/library/alpine:latest`,
//! `localhost:5000/app@sha256:…` keeps its registry and digest.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DOCKER_HUB: &str = "docker.io";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn bad(s: &str, why: &str) -> Error {
    Error::Reference(s.to_string(), why.to_string())
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(bad(s, "empty reference"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|_| bad(s, "invalid digest"))?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            if !valid_tag(t) {
                return Err(bad(s, "invalid tag"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                if !valid_domain(first) {
                    return Err(bad(s, "invalid registry name"));
                }
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        if repository.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad(s, "repository name must be lowercase"));
        }
        if !repository.split('/').all(valid_component) {
            return Err(bad(s, "invalid repository name"));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if registry.len() + 1 + repository.len() > 255 {
            return Err(bad(s, "repository name must not be longer than 255 characters"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl Reference {
    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker shows it: `alpine`, `user/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// `familiar_name[:tag][@digest]`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }

    /// The host to open connections to (Docker Hub's API lives on another name).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same repository at another tag.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// A tag-form name for storing (`docker.io/library/alpine:latest`); None for digest-only references.
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        s.parse::<Reference>().unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(full("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(full("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("ghcr.io/o/r/sub:tag"), "ghcr.io/o/r/sub:tag");
        assert_eq!(full("127.0.0.1:5000/a/b"), "127.0.0.1:5000/a/b:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(full(&format!("busybox@{d}")), format!("docker.io/library/busybox@{d}"));
        assert_eq!(
            full(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
        let r: Reference = "localhost:5000/app".parse().unwrap();
        assert_eq!(r.familiar(), "localhost:5000/app:latest");
        assert_eq!("alpine".parse::<Reference>().unwrap().familiar(), "alpine:latest");
        assert_eq!(
            "alpine".parse::<Reference>().unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn refuses_bad_names() {
        for s in [
            "",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "alpine@sha256:123",
            "localhost:x/app",
            "app:tag/x:1",
            &format!("a:{}", "t".repeat(129)),
        ] {
            assert!(s.parse::<Reference>().is_err(), "{s:?} should be refused");
        }
        for s in ["a__b", "a---b", "a.b_c", "a9/b-c"] {
            assert!(s.parse::<Reference>().is_ok(), "{s:?} should parse");
        }
    }
}
