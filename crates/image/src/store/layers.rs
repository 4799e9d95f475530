//! Layers unpacked once, under their chain ID, and collected when no image uses them.

use std::io::Read;
use std::path::PathBuf;

use crate::digest::{Digest, HashReader};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::unpack;

/// A layer unpacked under tmp/, not yet placed; dropped, it is removed.
pub struct Unpacked {
    tmp: PathBuf,
    pub diff_id: Digest,
    /// Bytes of file data unpacked.
    pub bytes: u64,
    /// Length of the uncompressed tar stream (what `save` writes back).
    pub tar_size: u64,
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

impl Store {
    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_path(chain_id).is_dir()
    }

    /// Unpacked size and tar length of a layer already in place (recorded by any image using it).
    pub fn layer_size(&self, chain_id: &Digest) -> Result<Option<(u64, u64)>> {
        use rusqlite::OptionalExtension;
        let n: Option<(i64, i64)> = self
            .db()
            .query_row(
                "SELECT size, tar_size FROM image_layers WHERE chain_id = ?1 AND tar_size > 0 LIMIT 1",
                [chain_id.to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(n.map(|(a, b)| (a as u64, b as u64)))
    }

    /// Unpack a layer stream (gzip, zstd, xz or plain tar) as layer `chain_id`, checking that
    /// its content hashes to `diff_id`. `parents` are the chain IDs below it, bottom first.
    /// `verify` gets the compressed stream back once the tar is read, to check the blob itself;
    /// the layer goes into place only if that succeeds too. Returns (bytes unpacked, tar length).
    pub fn extract_layer<R: Read>(
        &self,
        mut compressed: R,
        chain_id: &Digest,
        diff_id: &Digest,
        parents: &[Digest],
        verify: impl FnOnce(R) -> Result<()>,
    ) -> Result<(u64, u64)> {
        let u = {
            let (_, tar) =
                crate::compress::decompress(&mut compressed).map_err(Error::io(format!("read layer {diff_id}")))?;
            self.unpack_to_tmp(tar, parents, &diff_id.to_string())?
        };
        // The blob the manifest promised is checked first: a wrong diff ID is only news if it is right.
        verify(compressed)?;
        diff_id.check(&format!("layer {diff_id} (uncompressed content)"), &u.diff_id)?;
        let sizes = (u.bytes, u.tar_size);
        self.place_layer(u, chain_id)?;
        Ok(sizes)
    }

    /// Unpack an uncompressed tar into a temporary directory, hashing it on the way.
    pub fn unpack_to_tmp(&self, tar: impl Read, parents: &[Digest], label: &str) -> Result<Unpacked> {
        let tmp = self.tmp_path("layer");
        std::fs::create_dir(&tmp).map_err(Error::path(&tmp))?;
        let mut u = Unpacked {
            tmp,
            diff_id: Digest::of(b""),
            bytes: 0,
            tar_size: 0,
        };
        let lowers: Vec<PathBuf> = parents.iter().rev().map(|c| self.layer_path(c)).collect();
        let mut hashed = HashReader::new(tar);
        let stats = unpack::unpack(&mut hashed, &u.tmp, label, &lowers)?;
        let (digest, tar_size) = hashed.finish().map_err(Error::io(format!("read layer {label}")))?;
        u.diff_id = digest;
        u.bytes = stats.bytes;
        u.tar_size = tar_size;
        Ok(u)
    }

    /// Move an unpacked layer under its chain ID (keeping another process's copy if it won).
    pub fn place_layer(&self, mut u: Unpacked, chain_id: &Digest) -> Result<()> {
        let dest = self.layer_path(chain_id);
        let tmp = std::mem::take(&mut u.tmp);
        if let Err(e) = std::fs::rename(&tmp, &dest) {
            let _ = std::fs::remove_dir_all(&tmp);
            if !dest.is_dir() {
                return Err(Error::Path { path: dest, source: e });
            }
        }
        Ok(())
    }

    /// Remove the given blobs and layers unless an image still uses them. Returns how many went.
    pub fn collect(&self, blobs: &[Digest], layers: &[Digest]) -> Result<(usize, usize)> {
        let _lock = self.lock()?;
        let mut nb = 0;
        for b in blobs {
            if !self.blob_in_use(b)? && std::fs::remove_file(self.blob_path(b)).is_ok() {
                nb += 1;
            }
        }
        let mut nl = 0;
        for l in layers {
            if !self.layer_in_use(l)? && self.has_layer(l) {
                let p = self.layer_path(l);
                // Renamed away first so a half-deleted directory never sits under a layer's name.
                let doomed = self.tmp_path("rm");
                if std::fs::rename(&p, &doomed).is_ok() {
                    let _ = std::fs::remove_dir_all(&doomed);
                    nl += 1;
                }
            }
        }
        Ok((nb, nl))
    }

    /// Blobs and layers no image refers to (left by interrupted pulls), older than `grace`.
    pub fn orphans(&self, grace: std::time::Duration) -> Result<(Vec<Digest>, Vec<Digest>)> {
        let old = |p: &std::path::Path| {
            p.symlink_metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().map(|e| e >= grace).unwrap_or(false))
                .unwrap_or(false)
        };
        let scan = |dir: PathBuf| -> Vec<Digest> {
            std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| old(&e.path()))
                        .filter_map(|e| format!("sha256:{}", e.file_name().to_string_lossy()).parse().ok())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut blobs = Vec::new();
        for b in scan(self.root().join("blobs/sha256")) {
            if !self.blob_in_use(&b)? {
                blobs.push(b);
            }
        }
        let mut layers = Vec::new();
        for l in scan(self.root().join("layers")) {
            if !self.layer_in_use(&l)? {
                layers.push(l);
            }
        }
        Ok((blobs, layers))
    }
}
