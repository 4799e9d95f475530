//! Blobs: streamed to a temporary file while hashed, verified, then renamed to their digest.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;

use crate::digest::{Digest, HashWriter};
use crate::error::{Error, Result};
use crate::store::Store;

pub struct BlobWriter {
    tmp: PathBuf,
    out: Option<HashWriter<BufWriter<File>>>,
    final_dir: PathBuf,
}

impl BlobWriter {
    pub fn new(store: &Store) -> Result<BlobWriter> {
        let tmp = store.tmp_path("blob");
        let f = File::create(&tmp).map_err(Error::path(&tmp))?;
        Ok(BlobWriter {
            tmp,
            out: Some(HashWriter::new(BufWriter::with_capacity(256 * 1024, f))),
            final_dir: store.root().join("blobs/sha256"),
        })
    }

    /// Verify against what the descriptor promised (when known) and move into place.
    pub fn commit(mut self, what: &str, expect: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let out = self
            .out
            .take()
            .ok_or_else(|| Error::Invalid("blob already committed".into()))?;
        let (w, digest, size) = out.finish();
        let tmp = std::mem::take(&mut self.tmp);
        let cleanup = |e: Error| {
            let _ = std::fs::remove_file(&tmp);
            e
        };
        w.into_inner()
            .map_err(|e| cleanup(Error::Io(format!("write {}", tmp.display()), e.into_error())))?;
        if let Some((d, s)) = expect {
            if s != size {
                return Err(cleanup(Error::SizeMismatch {
                    what: what.to_string(),
                    expected: s,
                    actual: size,
                }));
            }
            d.check(what, &digest).map_err(cleanup)?;
        }
        let dest = self.final_dir.join(digest.hex());
        let tmp = &tmp;
        std::fs::rename(tmp, &dest).map_err(|e| cleanup(Error::Path { path: dest, source: e }))?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.out {
            Some(o) => o.write(buf),
            None => Err(std::io::Error::other("blob already committed")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful commit the temporary name is gone and this does nothing.
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Store {
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        let data = std::fs::read(&p).map_err(Error::path(&p))?;
        // Blobs are verified on the way in; checking small ones again on use is cheap insurance.
        d.check(&format!("blob {d}"), &Digest::of(&data))?;
        Ok(data)
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        File::open(&p).map_err(Error::path(&p))
    }

    /// Store bytes already in memory (manifests, configs).
    pub fn put_blob(&self, data: &[u8], what: &str, expect: Option<(&Digest, u64)>) -> Result<Digest> {
        let d = Digest::of(data);
        if let Some((e, s)) = expect {
            if s != data.len() as u64 {
                return Err(Error::SizeMismatch {
                    what: what.to_string(),
                    expected: s,
                    actual: data.len() as u64,
                });
            }
            e.check(what, &d)?;
        }
        if self.has_blob(&d) {
            return Ok(d);
        }
        let mut w = BlobWriter::new(self)?;
        w.write_all(data).map_err(Error::io(format!("write {what}")))?;
        w.commit(what, None).map(|(d, _)| d)
    }

    /// Copy a reader into the store, verifying it against `expect`.
    pub fn put_blob_from(&self, r: &mut dyn Read, what: &str, expect: Option<(&Digest, u64)>) -> Result<(Digest, u64)> {
        let mut w = BlobWriter::new(self)?;
        std::io::copy(r, &mut w).map_err(Error::io(format!("read {what}")))?;
        w.commit(what, expect)
    }
}
