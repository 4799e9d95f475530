use std::io::{Read, Write};

use super::{DockerEntry, Format, CONTAINERD_NAME, REF_NAME};
use crate::compress;
use crate::digest::{Digest, HashReader};
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, Index};
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn add<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    b.append_data(&mut header(data.len() as u64), path, data)
        .map_err(Error::io(format!("write {path} to the archive")))
}

/// The names to record for `name`: itself when it names a tag of the image, else all its tags.
fn names_for(img: &ImageRecord, name: &str) -> Vec<Reference> {
    if let Ok(r) = name.parse::<Reference>() {
        if r.tagged().is_some_and(|t| img.tags.contains(&t)) {
            return vec![r];
        }
    }
    img.tags.iter().filter_map(|t| t.parse().ok()).collect()
}

/// Write the images named in `names` to `out`.
pub fn save(store: &Store, names: &[String], format: Format, out: impl Write) -> Result<()> {
    let mut images = Vec::new();
    for n in names {
        let img = store.find(n)?;
        let refs = names_for(&img, n);
        images.push((img, refs));
    }
    let mut b = tar::Builder::new(out);
    match format {
        Format::Docker => save_docker(store, &images, &mut b)?,
        Format::Oci => save_oci(store, &images, &mut b)?,
    }
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(Error::io("finish the archive"))
}

fn save_docker<W: Write>(
    store: &Store,
    images: &[(ImageRecord, Vec<Reference>)],
    b: &mut tar::Builder<W>,
) -> Result<()> {
    let mut written = std::collections::HashSet::new();
    let mut entries = Vec::new();
    for (img, refs) in images {
        let config = store.read_blob(&img.id)?;
        let config_path = format!("{}.json", img.id.hex());
        if written.insert(config_path.clone()) {
            add(b, &config_path, &config)?;
        }
        let mut layers = Vec::new();
        for l in store.image_layers(&img.id)? {
            let path = format!("{}.tar", l.diff_id.hex());
            if written.insert(path.clone()) {
                if l.tar_size == 0 {
                    return Err(Error::Invalid(format!(
                        "layer {} has no recorded size (stored by an older lbox); pull the image again",
                        l.diff_id
                    )));
                }
                // Layers are kept compressed; the archive gets them as plain tar, checked on the way.
                let blob = store.open_blob(&l.blob)?;
                let (_, tar) = compress::decompress(blob).map_err(Error::io(format!("read layer {}", l.blob)))?;
                let mut hashed = HashReader::new(tar.take(l.tar_size));
                b.append_data(&mut header(l.tar_size), &path, &mut hashed)
                    .map_err(Error::io(format!("write layer {} to the archive", l.diff_id)))?;
                let (d, n) = hashed.finish().map_err(Error::io("read layer"))?;
                if n != l.tar_size {
                    return Err(Error::SizeMismatch {
                        what: format!("layer {}", l.diff_id),
                        expected: l.tar_size,
                        actual: n,
                    });
                }
                l.diff_id.check(&format!("layer {}", l.diff_id), &d)?;
            }
            layers.push(path);
        }
        let tags: Vec<String> = refs.iter().map(|r| r.familiar()).collect();
        entries.push(DockerEntry {
            config: config_path,
            repo_tags: Some(tags),
            layers,
        });
    }
    let manifest = serde_json::to_vec(&entries).map_err(|e| Error::Invalid(e.to_string()))?;
    add(b, "manifest.json", &manifest)
}

fn add_blob<W: Write>(
    store: &Store,
    b: &mut tar::Builder<W>,
    d: &Digest,
    written: &mut std::collections::HashSet<Digest>,
) -> Result<()> {
    if !written.insert(d.clone()) {
        return Ok(());
    }
    let mut f = store.open_blob(d)?;
    let size = f.metadata().map_err(Error::io(format!("blob {d}")))?.len();
    b.append_data(&mut header(size), format!("blobs/sha256/{}", d.hex()), &mut f)
        .map_err(Error::io(format!("write blob {d} to the archive")))
}

fn save_oci<W: Write>(store: &Store, images: &[(ImageRecord, Vec<Reference>)], b: &mut tar::Builder<W>) -> Result<()> {
    add(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut written = std::collections::HashSet::new();
    let mut manifests = Vec::new();
    for (img, refs) in images {
        add_blob(store, b, &img.id, &mut written)?;
        for l in store.image_layers(&img.id)? {
            add_blob(store, b, &l.blob, &mut written)?;
        }
        add_blob(store, b, &img.manifest_digest, &mut written)?;
        let size = std::fs::metadata(store.blob_path(&img.manifest_digest))
            .map_err(Error::path(store.blob_path(&img.manifest_digest)))?
            .len();
        let names: Vec<Option<&Reference>> = if refs.is_empty() {
            vec![None]
        } else {
            refs.iter().map(Some).collect()
        };
        for r in names {
            let mut d = Descriptor::new(&img.manifest_media_type, img.manifest_digest.clone(), size);
            if let Some(r) = r {
                let mut a = std::collections::BTreeMap::new();
                a.insert(REF_NAME.to_string(), r.to_string());
                a.insert(CONTAINERD_NAME.to_string(), r.to_string());
                d.annotations = Some(a);
            }
            manifests.push(d);
        }
    }
    let index = Index {
        schema_version: 2,
        media_type: Some(crate::manifest::OCI_INDEX.into()),
        manifests,
        other: Default::default(),
    };
    let bytes = serde_json::to_vec(&index).map_err(|e| Error::Invalid(e.to_string()))?;
    add(b, "index.json", &bytes)
}
