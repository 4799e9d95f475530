//! `save` and `load`: images in a single tar file, as docker-archive (Docker's and podman's
//! `save` format: manifest.json, one config and one uncompressed tar per layer) or oci-archive
//! (an OCI image layout in a tar: oci-layout, index.json, blobs/sha256/…).

mod load;
mod save;

pub use load::load;
pub use save::save;

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "docker-archive" | "docker" => Ok(Format::Docker),
            "oci-archive" | "oci" => Ok(Format::Oci),
            other => Err(Error::Invalid(format!(
                "unknown archive format {other:?}: use docker-archive or oci-archive"
            ))),
        }
    }
}

/// One entry of a docker-archive's manifest.json.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DockerEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";
