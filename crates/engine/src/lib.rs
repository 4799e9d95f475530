//! LockBox's container engine: containers and volumes, their state in SQLite, the per-container
//! monitor, logs. It drives the runtime in-process and takes root filesystems from the image
//! store; there is no daemon: every `lbox` command opens the engine, works, and exits.

pub mod attach;
pub mod blkio;
pub mod config;
pub mod copy;
pub mod create;
pub mod db;
pub mod error;
pub mod exec;
pub mod export;
mod external;
mod health;
mod init_program;
mod inroot;
pub mod launch;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod names;
pub mod netconnect;
pub mod netflags;
pub mod nethosts;
pub mod netpool;
pub mod networks;
pub mod owner;
pub mod parse;
pub mod paths;
pub mod prune;
pub mod remove;
pub mod rootfs;
pub mod spec;
mod supervise;
pub mod time;
pub mod trash;
mod trim;
pub mod volumes;

use std::cell::OnceCell;

pub use config::ContainerConfig;
pub use db::{Container, State};
pub use error::{Error, Result};
pub use paths::Paths;

pub struct Engine {
    pub paths: Paths,
    db: rusqlite::Connection,
    images: OnceCell<image::Store>,
}

impl Engine {
    pub fn open(paths: Paths) -> Result<Engine> {
        let db = db::open(&paths.db())?;
        Ok(Engine {
            paths,
            db,
            images: OnceCell::new(),
        })
    }

    pub fn db(&self) -> &rusqlite::Connection {
        &self.db
    }

    /// The image store, opened on first use (most container commands never need it).
    pub fn images(&self) -> Result<&image::Store> {
        if let Some(s) = self.images.get() {
            return Ok(s);
        }
        let s = image::Store::open(&self.paths.images())?;
        Ok(self.images.get_or_init(|| s))
    }

    pub fn runtime_store(&self) -> runtime::state::Store {
        runtime::state::Store::new(self.paths.runtime())
    }

    /// Find a container by name, ID or unique ID prefix, its state brought up to date.
    pub fn find(&self, key: &str) -> Result<Container> {
        let ct = db::find(&self.db, key)?;
        lifecycle::refresh(self, ct)
    }

    /// Every container, newest first, states brought up to date.
    pub fn containers(&self) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for c in db::all(&self.db)? {
            match lifecycle::refresh(self, c) {
                Ok(c) => out.push(c),
                // Removed meanwhile (a --rm container whose owner had died).
                Err(Error::NoSuchContainer(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(out)
    }
}
