use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;

use super::{DockerEntry, CONTAINERD_NAME, REF_NAME};
use crate::compress;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::import::GzTee;
use crate::manifest::{self, AnyManifest, Descriptor, ImageConfig, Index, Manifest, Platform};
use crate::reference::Reference;
use crate::store::{ImageLayer, NewImage, Store};
use crate::unpack::{self, path};

/// A directory the archive is unpacked into, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Open a file named by the archive's own metadata, never outside the unpacked archive.
fn open_in(dir: &Path, name: &str) -> Result<File> {
    let bad = |why: String| Error::Invalid(format!("archive: {name:?}: {why}"));
    let ep = path::clean(name.as_bytes())
        .map_err(bad)?
        .ok_or_else(|| bad("names the archive root".into()))?;
    let root = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let fd =
        path::open_beneath(&root, &ep.full(), OFlags::RDONLY | OFlags::NOFOLLOW).map_err(|e| bad(path::explain(e)))?;
    Ok(File::from(fd))
}

fn read_in(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    open_in(dir, name)?
        .read_to_end(&mut v)
        .map_err(Error::io(format!("archive: read {name}")))?;
    Ok(v)
}

/// Load every image of a docker-archive or oci-archive; returns what to report per image.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<String>> {
    let scratch = Scratch(store.tmp_path("load"));
    std::fs::create_dir(&scratch.0).map_err(Error::path(&scratch.0))?;
    let (_, tar) = compress::decompress(input).map_err(Error::io("read the archive"))?;
    unpack::unpack(tar, &scratch.0, "archive", &[])?;
    let dir = &scratch.0;
    if dir.join("manifest.json").is_file() {
        load_docker(store, dir)
    } else if dir.join("index.json").is_file() {
        load_oci(store, dir)
    } else {
        Err(Error::Invalid(
            "not a docker-archive or oci-archive: no manifest.json or index.json".into(),
        ))
    }
}

fn load_docker(store: &Store, dir: &Path) -> Result<Vec<String>> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(&read_in(dir, "manifest.json")?)
        .map_err(|e| Error::Invalid(format!("archive: manifest.json: {e}")))?;
    let mut report = Vec::new();
    for e in entries {
        let config = read_in(dir, &e.config)?;
        let cfg = ImageConfig::parse(&config, &e.config)?;
        let diff_ids = cfg.rootfs.diff_ids.clone();
        if diff_ids.len() != e.layers.len() {
            return Err(Error::Invalid(format!(
                "archive: {} lists {} layers but its configuration {} diff IDs",
                e.config,
                e.layers.len(),
                diff_ids.len()
            )));
        }
        let id = store.put_blob(&config, "image configuration", None)?;
        let chains = manifest::chain_ids(&diff_ids);
        let mut layers = Vec::new();
        for (i, name) in e.layers.iter().enumerate() {
            // The layer is recompressed as the blob this store keeps, and unpacked in the same pass.
            let (_, tar) =
                compress::decompress(open_in(dir, name)?).map_err(Error::io(format!("archive: read {name}")))?;
            let mut tee = GzTee::new(tar, store)?;
            let u = store.unpack_to_tmp(&mut tee, &chains[..i], name)?;
            io::copy(&mut tee, &mut io::sink()).map_err(Error::io(format!("archive: read {name}")))?;
            diff_ids[i].check(&format!("archive: layer {name}"), &u.diff_id)?;
            let blob = tee.out.finish().map_err(Error::io("compress layer"))?;
            let (blob_digest, blob_size) = blob.commit(&format!("layer {name}"), None)?;
            let (size, tar_size) = (u.bytes, u.tar_size);
            store.place_layer(u, &chains[i])?;
            layers.push(ImageLayer {
                chain_id: chains[i].clone(),
                diff_id: diff_ids[i].clone(),
                blob: blob_digest,
                media_type: manifest::OCI_LAYER_GZIP.into(),
                blob_size,
                size,
                tar_size,
            });
        }
        let m = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor::new(manifest::OCI_CONFIG, id.clone(), config.len() as u64),
            layers: layers
                .iter()
                .map(|l| Descriptor::new(&l.media_type, l.blob.clone(), l.blob_size))
                .collect(),
            other: Default::default(),
        };
        let mbytes = serde_json::to_vec(&m).map_err(|x| Error::Invalid(x.to_string()))?;
        let manifest_digest = store.put_blob(&mbytes, "manifest", None)?;
        let tags: Vec<Reference> = e
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| t.parse())
            .collect::<Result<_>>()?;
        commit(
            store,
            &id,
            manifest_digest,
            manifest::OCI_MANIFEST,
            cfg.created,
            layers,
            &tags,
            &mut report,
        )?;
    }
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn commit(
    store: &Store,
    id: &Digest,
    manifest_digest: Digest,
    media_type: &str,
    created: Option<String>,
    layers: Vec<ImageLayer>,
    tags: &[Reference],
    report: &mut Vec<String>,
) -> Result<()> {
    store.commit_image(&NewImage {
        id: id.clone(),
        manifest_digest,
        manifest_media_type: media_type.to_string(),
        created,
        layers,
        tag: tags.first().and_then(|t| t.tagged()),
        repo_digest: None,
    })?;
    for t in tags.iter().skip(1) {
        if let Some(name) = t.tagged() {
            store.set_tag(&name, id)?;
        }
    }
    if tags.is_empty() {
        report.push(format!("ID: {id}"));
    }
    report.extend(tags.iter().map(|t| t.familiar()));
    Ok(())
}

/// A blob of the layout, checked against its descriptor.
fn layout_blob(dir: &Path, d: &Descriptor) -> Result<Vec<u8>> {
    let data = read_in(dir, &format!("blobs/sha256/{}", d.digest.hex()))?;
    if data.len() as u64 != d.size {
        return Err(Error::SizeMismatch {
            what: format!("archive blob {}", d.digest),
            expected: d.size,
            actual: data.len() as u64,
        });
    }
    d.digest
        .check(&format!("archive blob {}", d.digest), &Digest::of(&data))?;
    Ok(data)
}

fn load_oci(store: &Store, dir: &Path) -> Result<Vec<String>> {
    let index: Index = serde_json::from_slice(&read_in(dir, "index.json")?)
        .map_err(|e| Error::Invalid(format!("archive: index.json: {e}")))?;
    let mut report = Vec::new();
    for desc in &index.manifests {
        let name = desc
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONTAINERD_NAME).or(a.get(REF_NAME)))
            .and_then(|n| {
                if n.contains('/') || n.contains(':') {
                    n.parse::<Reference>().ok()
                } else {
                    None
                }
            });
        let mut bytes = layout_blob(dir, desc)?;
        let mut mdesc = desc.clone();
        let m = loop {
            match manifest::parse_manifest(&bytes, Some(&mdesc.media_type), &mdesc.digest.to_string())? {
                AnyManifest::Image(m) => break *m,
                AnyManifest::Index(idx) => {
                    let host = Platform::host();
                    mdesc = idx
                        .manifests
                        .iter()
                        .find(|d| d.platform.as_ref().is_some_and(|p| host.matches(p)))
                        .cloned()
                        .ok_or_else(|| {
                            Error::Invalid(format!("archive: no manifest for {host} in {}", mdesc.digest))
                        })?;
                    bytes = layout_blob(dir, &mdesc)?;
                }
            }
        };
        let config = layout_blob(dir, &m.config)?;
        let cfg = ImageConfig::parse(&config, &m.config.digest.to_string())?;
        if cfg.rootfs.diff_ids.len() != m.layers.len() {
            return Err(Error::Invalid(format!(
                "archive: manifest {} and its configuration disagree on the layers",
                mdesc.digest
            )));
        }
        store.put_blob(&config, "image configuration", Some((&m.config.digest, m.config.size)))?;
        let chains = manifest::chain_ids(&cfg.rootfs.diff_ids);
        let mut layers = Vec::new();
        for (i, l) in m.layers.iter().enumerate() {
            let what = format!("archive blob {}", l.digest);
            let blob_name = format!("blobs/sha256/{}", l.digest.hex());
            store.put_blob_from(&mut open_in(dir, &blob_name)?, &what, Some((&l.digest, l.size)))?;
            let (size, tar_size) = match store.layer_size(&chains[i])? {
                Some(s) if store.has_layer(&chains[i]) => s,
                _ => store.extract_layer(
                    store.open_blob(&l.digest)?,
                    &chains[i],
                    &cfg.rootfs.diff_ids[i],
                    &chains[..i],
                    |_| Ok(()),
                )?,
            };
            layers.push(ImageLayer {
                chain_id: chains[i].clone(),
                diff_id: cfg.rootfs.diff_ids[i].clone(),
                blob: l.digest.clone(),
                media_type: l.media_type.clone(),
                blob_size: l.size,
                size,
                tar_size,
            });
        }
        let manifest_digest = store.put_blob(&bytes, "manifest", Some((&mdesc.digest, mdesc.size)))?;
        let tags: Vec<Reference> = name.into_iter().collect();
        commit(
            store,
            &m.config.digest,
            manifest_digest,
            &mdesc.media_type,
            cfg.created.clone(),
            layers,
            &tags,
            &mut report,
        )?;
    }
    Ok(report)
}
