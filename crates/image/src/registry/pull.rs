//! Pull: resolve the manifest (choosing a platform from an index), fetch and verify the config,
//! then stream every missing layer — download, hash, decompress, hash again, unpack — several at
//! once, and record the image only when all of it is in place.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::client::{Client, Payload};
use super::Progress;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, AnyManifest, Descriptor, ImageConfig, Manifest, Platform, ACCEPT_MANIFESTS};
use crate::reference::Reference;
use crate::store::{BlobWriter, ImageLayer, NewImage, Store};

const MAX_MANIFEST: u64 = 4 << 20;

/// (bytes of file data unpacked, length of the uncompressed tar)
type LayerSizes = (u64, u64);
/// Layers fetched at once, unless `LBOX_PULL_JOBS` says otherwise.
const PARALLEL: usize = 4;

fn parallel() -> usize {
    std::env::var("LBOX_PULL_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(PARALLEL)
}

#[derive(Clone, Debug, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
}

fn scope(r: &Reference) -> String {
    format!("repository:{}:pull", r.repository)
}

/// Fetch a manifest by tag or digest; returns (bytes, media type, digest of the bytes).
fn fetch_manifest(c: &Client, r: &Reference, reference: &str) -> Result<(Vec<u8>, Option<String>, Digest)> {
    let path = format!("/v2/{}/manifests/{reference}", r.repository);
    let mut resp = c.send(
        "GET",
        &path,
        &scope(r),
        &[("Accept", ACCEPT_MANIFESTS)],
        &Payload::Empty,
    )?;
    if resp.status().as_u16() != 200 {
        let what = format!("manifest for {}", r.familiar());
        return Err(match resp.status().as_u16() {
            404 => Error::Registry {
                registry: c.registry.clone(),
                message: format!("image {} not found (no manifest for {reference})", r.familiar()),
            },
            _ => c.error(&what, resp),
        });
    }
    let mt = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_MANIFEST)
        .read_to_vec()
        .map_err(|e| Error::Registry {
            registry: c.registry.clone(),
            message: format!("read manifest: {e}"),
        })?;
    let d = Digest::of(&body);
    Ok((body, mt, d))
}

fn get_blob(c: &Client, r: &Reference, d: &Digest) -> Result<super::client::Resp> {
    let resp = c.send(
        "GET",
        &format!("/v2/{}/blobs/{d}", r.repository),
        &scope(r),
        &[],
        &Payload::Empty,
    )?;
    if resp.status().as_u16() != 200 {
        return Err(c.error(&format!("blob {d} of {}", r.familiar()), resp));
    }
    Ok(resp)
}

/// Pull `r` into the store and tag it; returns the image ID.
pub fn pull(store: &Store, c: &Client, r: &Reference, opts: &PullOptions, progress: &dyn Progress) -> Result<Digest> {
    let (bytes, mt, top_digest) = fetch_manifest(c, r, &r.manifest_ref())?;
    if let Some(want) = &r.digest {
        want.check(&format!("manifest {}", r.familiar()), &top_digest)?;
    }
    let want_platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let (manifest, manifest_bytes, manifest_digest, manifest_mt) =
        match manifest::parse_manifest(&bytes, mt.as_deref(), &r.familiar())? {
            AnyManifest::Image(m) => {
                let mt = m
                    .media_type
                    .clone()
                    .or(mt)
                    .unwrap_or_else(|| manifest::OCI_MANIFEST.into());
                (*m, bytes, top_digest.clone(), mt)
            }
            AnyManifest::Index(idx) => {
                let desc = idx
                    .manifests
                    .iter()
                    .find(|d| d.platform.as_ref().is_some_and(|p| want_platform.matches(p)))
                    .ok_or_else(|| {
                        let have: Vec<String> = idx
                            .manifests
                            .iter()
                            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                            .collect();
                        Error::Invalid(format!(
                        "image {} has no variant for platform {want_platform} (it has: {}); choose one with --platform",
                        r.familiar(),
                        have.join(", ")
                    ))
                    })?
                    .clone();
                let (b, mt2, d) = fetch_manifest(c, r, &desc.digest.to_string())?;
                desc.digest
                    .check(&format!("manifest {} for {want_platform}", r.familiar()), &d)?;
                if b.len() as u64 != desc.size {
                    return Err(Error::SizeMismatch {
                        what: format!("manifest {d}"),
                        expected: desc.size,
                        actual: b.len() as u64,
                    });
                }
                match manifest::parse_manifest(&b, mt2.as_deref().or(Some(&desc.media_type)), &r.familiar())? {
                    AnyManifest::Image(m) => {
                        let mt = desc.media_type.clone();
                        (*m, b, d, mt)
                    }
                    AnyManifest::Index(_) => {
                        return Err(Error::Invalid(format!(
                            "{}: an index inside an index is not supported",
                            r.familiar()
                        )))
                    }
                }
            }
        };
    let config = fetch_config(store, c, r, &manifest.config)?;
    let image = pull_layers(store, c, r, &manifest, &config, progress)?;
    store.put_blob(&manifest_bytes, &format!("manifest {manifest_digest}"), None)?;
    let record = NewImage {
        id: manifest.config.digest.clone(),
        manifest_digest,
        manifest_media_type: manifest_mt,
        created: config.created.clone(),
        layers: image,
        tag: r.tagged(),
        repo_digest: Some(format!("{}@{top_digest}", r.name())),
    };
    store.commit_image(&record)?;
    Ok(record.id)
}

fn fetch_config(store: &Store, c: &Client, r: &Reference, desc: &Descriptor) -> Result<ImageConfig> {
    let what = format!("config {} of {}", desc.digest, r.familiar());
    if !store.has_blob(&desc.digest) {
        let resp = get_blob(c, r, &desc.digest)?;
        let mut body = resp.into_body().into_reader().take(desc.size + 1);
        store.put_blob_from(&mut body, &what, Some((&desc.digest, desc.size)))?;
    }
    let bytes = store.read_blob(&desc.digest)?;
    ImageConfig::parse(&bytes, &what)
}

/// Copies what it reads into the blob being written, and reports progress.
struct Tee<'a, R> {
    inner: R,
    blob: BlobWriter,
    digest: &'a Digest,
    progress: &'a dyn Progress,
    done: u64,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(&mut self.blob, &buf[..n])?;
        self.done += n as u64;
        self.progress.advanced(self.digest, self.done);
        Ok(n)
    }
}

fn pull_layers(
    store: &Store,
    c: &Client,
    r: &Reference,
    m: &Manifest,
    config: &ImageConfig,
    progress: &dyn Progress,
) -> Result<Vec<ImageLayer>> {
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != m.layers.len() {
        return Err(Error::Invalid(format!(
            "{}: the manifest lists {} layers but the configuration {} diff IDs",
            r.familiar(),
            m.layers.len(),
            diff_ids.len()
        )));
    }
    let chains = manifest::chain_ids(diff_ids);
    let mut sizes: Vec<Option<LayerSizes>> = vec![None; m.layers.len()];
    let mut todo = Vec::new();
    for (i, l) in m.layers.iter().enumerate() {
        if l.media_type == manifest::DOCKER_LAYER_FOREIGN || l.urls.is_some() {
            return Err(Error::Invalid(format!(
                "{}: foreign layers (Windows base layers) are not supported",
                r.familiar()
            )));
        }
        if store.has_layer(&chains[i]) && store.has_blob(&l.digest) {
            if let Some(s) = store.layer_size(&chains[i])? {
                sizes[i] = Some(s);
                progress.finished(&l.digest, "Already exists");
                continue;
            }
        }
        todo.push(i);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<(usize, Result<LayerSizes>)>> = Mutex::new(Vec::new());
    let deferred: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    let one = |i: usize| {
        pull_layer(
            store,
            c,
            r,
            &m.layers[i],
            &chains[i],
            &diff_ids[i],
            &chains[..i],
            progress,
        )
    };
    std::thread::scope(|s| {
        for _ in 0..parallel().min(todo.len()) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= todo.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let i = todo[k];
                let res = one(i);
                if let Err(Error::LowerLayersPending(_)) = res {
                    deferred.lock().unwrap_or_else(|p| p.into_inner()).push(i);
                    continue;
                }
                if res.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                results.lock().unwrap_or_else(|p| p.into_inner()).push((i, res));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    // Layers with hard links into lower ones go again, in order, now that the others are in place.
    let mut deferred = deferred.into_inner().unwrap_or_else(|p| p.into_inner());
    deferred.sort_unstable();
    if !results.iter().any(|(_, res)| res.is_err()) {
        for i in deferred {
            results.push((i, one(i)));
        }
    }
    for (i, res) in results {
        sizes[i] = Some(res?);
    }
    m.layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            Ok(ImageLayer {
                chain_id: chains[i].clone(),
                diff_id: diff_ids[i].clone(),
                blob: l.digest.clone(),
                media_type: l.media_type.clone(),
                blob_size: l.size,
                size: sizes[i]
                    .ok_or_else(|| Error::Invalid(format!("layer {} was not pulled", l.digest)))?
                    .0,
                tar_size: sizes[i].map(|s| s.1).unwrap_or(0),
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn pull_layer(
    store: &Store,
    c: &Client,
    r: &Reference,
    desc: &Descriptor,
    chain: &Digest,
    diff_id: &Digest,
    parents: &[Digest],
    progress: &dyn Progress,
) -> Result<LayerSizes> {
    progress.started(&desc.digest, desc.size);
    let resp = get_blob(c, r, &desc.digest)?;
    // Never read more than the descriptor promised (plus one byte, to notice the excess).
    let body = resp.into_body().into_reader().take(desc.size + 1);
    let tee = Tee {
        inner: body,
        blob: BlobWriter::new(store)?,
        digest: &desc.digest,
        progress,
        done: 0,
    };
    let what = format!("layer {}", desc.digest);
    let size = store.extract_layer(tee, chain, diff_id, parents, |mut tee| {
        io::copy(&mut tee, &mut io::sink()).map_err(Error::io(format!("download {what}")))?;
        tee.blob.commit(&what, Some((&desc.digest, desc.size)))?;
        Ok(())
    })?;
    progress.finished(&desc.digest, "Pull complete");
    Ok(size)
}
