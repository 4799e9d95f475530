//! The JSON documents of an image: manifests (OCI and Docker schema 2), indexes / manifest lists,
//! descriptors and the image configuration. Unknown fields are kept so a document can be re-written
//! without losing what another tool put there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// Every manifest type we can read, for the Accept header.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, in Go's names (amd64, arm64 …) as images use them.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "arm" => "arm",
            other => other,
        };
        let variant = match arch {
            "arm64" => Some("v8".to_string()),
            _ => None,
        };
        Platform {
            architecture: arch.to_string(),
            os: "linux".to_string(),
            variant,
            os_version: None,
        }
    }

    /// `os/arch[/variant]`, as `--platform` takes it.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: parts.get(2).map(|v| v.to_string()),
                os_version: None,
            }),
            _ => Err(Error::Invalid(format!(
                "invalid platform {s:?}: expected os/arch[/variant], e.g. linux/amd64"
            ))),
        }
    }

    /// Whether an index entry's platform satisfies this wanted one (a missing variant matches any).
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && match (&self.variant, &other.variant) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            urls: None,
            annotations: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A manifest or an index, told apart by media type or, failing that, by shape.
pub enum AnyManifest {
    Image(Box<Manifest>),
    Index(Index),
}

pub fn parse_manifest(bytes: &[u8], media_type: Option<&str>, what: &str) -> Result<AnyManifest> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::Invalid(format!("{what}: manifest is not JSON: {e}")))?;
    let mt = media_type
        .filter(|m| !m.is_empty() && *m != "application/json")
        .map(str::to_string)
        .or_else(|| v.get("mediaType").and_then(Value::as_str).map(str::to_string));
    let is_index = match mt.as_deref() {
        Some(OCI_INDEX) | Some(DOCKER_LIST) => true,
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => false,
        Some("application/vnd.docker.distribution.manifest.v1+json")
        | Some("application/vnd.docker.distribution.manifest.v1+prettyjws") => {
            return Err(Error::Invalid(format!(
                "{what}: Docker schema 1 manifests are not supported; push the image again with a current tool"
            )))
        }
        _ => v.get("manifests").is_some(),
    };
    let r = if is_index {
        serde_json::from_value(v).map(AnyManifest::Index)
    } else {
        serde_json::from_value(v).map(|m| AnyManifest::Image(Box::new(m)))
    };
    r.map_err(|e| Error::Invalid(format!("{what}: malformed manifest: {e}")))
}

/// The runnable part of an image configuration (Docker's `config` object).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8], what: &str) -> Result<ImageConfig> {
        serde_json::from_slice(bytes).map_err(|e| Error::Invalid(format!("{what}: malformed image configuration: {e}")))
    }
}

/// Chain IDs: the first layer's is its diff ID; each next is sha256(parent + " " + diff ID).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::of(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(c[1], Digest::of(format!("{a} {b}").as_bytes()));
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        let want = Platform::parse("linux/arm").unwrap();
        assert!(want.matches(&Platform::parse("linux/arm/v7").unwrap()));
        assert!(!Platform::parse("linux/arm/v6")
            .unwrap()
            .matches(&Platform::parse("linux/arm/v7").unwrap()));
    }

    #[test]
    fn tells_manifests_from_indexes() {
        let d = Digest::of(b"x");
        let idx =
            format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{d}","size":1}}]}}"#);
        assert!(matches!(
            parse_manifest(idx.as_bytes(), None, "t").unwrap(),
            AnyManifest::Index(_)
        ));
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{d}","size":1}},"layers":[]}}"#
        );
        assert!(matches!(
            parse_manifest(m.as_bytes(), Some(OCI_MANIFEST), "t").unwrap(),
            AnyManifest::Image(_)
        ));
        let e = parse_manifest(b"{\"schemaVersion\":2,\"config\":5}", Some(OCI_MANIFEST), "t")
            .err()
            .unwrap();
        assert!(e.to_string().contains("malformed manifest"), "{e}");
    }
}
