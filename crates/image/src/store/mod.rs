//! The on-disk image store:
//! ```text
//! <root>/lbox.db              images, tags, layers (SQLite, WAL)
//! <root>/blobs/sha256/<hex>   manifests, configs, compressed layers; written to tmp/, verified, renamed
//! <root>/layers/<chain-id>/   each layer unpacked once, shared by every image that has it
//! <root>/tmp/<pid>-…          work in progress of one process; a dead process's leftovers are removed
//! ```
//! A directory or blob under its final name is always complete; the database refers to nothing
//! that is not in place, because rows are written last, in one transaction.

mod blobs;
mod cache;
mod db;
mod layers;
mod lock;
mod remove;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

pub use blobs::BlobWriter;
pub use db::{ImageLayer, ImageRecord, NewImage};
pub use layers::Unpacked;
pub use lock::StoreLock;

pub struct Store {
    root: PathBuf,
    db: std::sync::Mutex<rusqlite::Connection>,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Open (creating if needed) the store at `root`, and clear what dead processes left in tmp/.
    pub fn open(root: &Path) -> Result<Store> {
        for d in ["blobs/sha256", "layers", "tmp"] {
            std::fs::create_dir_all(root.join(d)).map_err(Error::path(root.join(d)))?;
        }
        let db = db::open(&root.join("lbox.db"))?;
        let store = Store {
            root: root.to_path_buf(),
            db: std::sync::Mutex::new(db),
        };
        store.clean_tmp();
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &crate::Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn layer_path(&self, chain_id: &crate::Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    /// A fresh name under tmp/ owned by this process.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        self.root
            .join("tmp")
            .join(format!("{}-{what}-{t:x}-{n}", std::process::id()))
    }

    fn clean_tmp(&self) {
        let Ok(rd) = std::fs::read_dir(self.root.join("tmp")) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid: Option<i32> = name.split('-').next().and_then(|p| p.parse().ok());
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }

    /// The database connection; the store is shared by pull threads, so it sits behind a mutex.
    pub fn db(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serialises the short critical sections: committing an image, and garbage collection.
    pub fn lock(&self) -> Result<StoreLock> {
        StoreLock::acquire(&self.root.join("store.lock"))
    }
}
