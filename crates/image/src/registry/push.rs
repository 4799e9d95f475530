//! Push: every blob the registry lacks is mounted from another repository of the same registry
//! when the image came from one, else uploaded (POST, then one PUT of the whole blob); the
//! manifest goes last, byte for byte as stored, so the pushed digest is the image's own.

use super::client::{Client, Payload};
use super::Progress;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

fn exists(c: &Client, repo: &str, scope: &str, d: &Digest) -> Result<bool> {
    let resp = c.send("HEAD", &format!("/v2/{repo}/blobs/{d}"), scope, &[], &Payload::Empty)?;
    match resp.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(c.error(&format!("check blob {d}"), resp)),
    }
}

fn location(c: &Client, resp: &super::client::Resp, what: &str) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Error::Registry {
            registry: c.registry.clone(),
            message: format!("{what}: no upload location"),
        })
}

/// Try a cross-repository mount; Some(source repo) when the registry did it.
fn mount(c: &Client, dest: &Reference, sources: &[String], d: &Digest) -> Result<Option<String>> {
    for src in sources.iter().filter(|s| **s != dest.repository) {
        let scope = format!("repository:{}:pull,push repository:{src}:pull", dest.repository);
        let path = format!("/v2/{}/blobs/uploads/?mount={d}&from={src}", dest.repository);
        let resp = c.send("POST", &path, &scope, &[("Content-Length", "0")], &Payload::Empty)?;
        match resp.status().as_u16() {
            201 => return Ok(Some(src.clone())),
            // 202: the registry started an ordinary upload instead; it will expire on its own.
            _ => continue,
        }
    }
    Ok(None)
}

fn upload(c: &Client, store: &Store, dest: &Reference, scope: &str, d: &Digest, size: u64) -> Result<()> {
    let what = format!("upload blob {d}");
    let resp = c.send(
        "POST",
        &format!("/v2/{}/blobs/uploads/", dest.repository),
        scope,
        &[("Content-Length", "0")],
        &Payload::Empty,
    )?;
    if resp.status().as_u16() != 202 {
        return Err(c.error(&what, resp));
    }
    let loc = location(c, &resp, &what)?;
    let sep = if loc.contains('?') { '&' } else { '?' };
    let url = format!("{loc}{sep}digest={d}");
    let resp = c.send(
        "PUT",
        &url,
        scope,
        &[("Content-Type", "application/octet-stream")],
        &Payload::File(store.blob_path(d), size),
    )?;
    if resp.status().as_u16() != 201 {
        return Err(c.error(&what, resp));
    }
    Ok(())
}

/// Push image `id` as `dest`; returns the manifest digest.
pub fn push(store: &Store, c: &Client, id: &Digest, dest: &Reference, progress: &dyn Progress) -> Result<Digest> {
    let img = store.image(id)?.ok_or_else(|| Error::ImageNotFound(id.to_string()))?;
    let layers = store.image_layers(id)?;
    let manifest = store.read_blob(&img.manifest_digest)?;
    let scope = format!("repository:{}:pull,push", dest.repository);
    let sources: Vec<String> = img
        .repo_digests
        .iter()
        .filter_map(|rd| rd.parse::<Reference>().ok())
        .filter(|r| r.registry == dest.registry)
        .map(|r| r.repository)
        .collect();
    let config_size = std::fs::metadata(store.blob_path(id))
        .map_err(Error::path(store.blob_path(id)))?
        .len();
    let mut blobs: Vec<(Digest, u64)> = layers.iter().map(|l| (l.blob.clone(), l.blob_size)).collect();
    blobs.push((id.clone(), config_size));
    for (d, size) in &blobs {
        if !store.has_blob(d) {
            return Err(Error::Invalid(format!(
                "blob {d} of image {} is not in the store; pull the image again",
                id.short()
            )));
        }
        if exists(c, &dest.repository, &scope, d)? {
            progress.finished(d, "Layer already exists");
            continue;
        }
        if let Some(src) = mount(c, dest, &sources, d)? {
            progress.finished(d, &format!("Mounted from {src}"));
            continue;
        }
        progress.started(d, *size);
        upload(c, store, dest, &scope, d, *size)?;
        progress.finished(d, "Pushed");
    }
    let resp = c.send(
        "PUT",
        &format!("/v2/{}/manifests/{}", dest.repository, dest.manifest_ref()),
        &scope,
        &[("Content-Type", img.manifest_media_type.as_str())],
        &Payload::Bytes(&manifest),
    )?;
    if resp.status().as_u16() != 201 {
        return Err(c.error(&format!("push manifest for {}", dest.familiar()), resp));
    }
    let digest = Digest::of(&manifest);
    store.add_repo_digest(id, &format!("{}@{digest}", dest.name()))?;
    Ok(digest)
}
