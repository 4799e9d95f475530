//! An image mounted for one step: read-write with a fresh upper directory (COPY, ADD, WORKDIR
//! write into the image there), or read-only (a COPY --from source). Dropped, it is unmounted and
//! its directories removed; `into_upper` keeps the upper directory as the step's change.

use std::path::{Path, PathBuf};

use image::{Digest, Store};

use crate::error::{Error, Result};

pub struct Mounted {
    dir: PathBuf,
    pub merged: PathBuf,
    mounted: bool,
}

impl Mounted {
    pub fn new(store: &Store, id: &Digest, writable: bool) -> Result<Mounted> {
        let dir = store.tmp_path("build-mount");
        let mut m = Mounted {
            merged: dir.join("merged"),
            dir,
            mounted: false,
        };
        for d in ["merged", "upper", "work"] {
            let p = m.dir.join(d);
            std::fs::create_dir_all(&p).map_err(Error::io(format!("create {}", p.display())))?;
        }
        // An image with no layer yet (FROM scratch) is mounted over an empty directory.
        let empty = store.root().join("empty");
        let top = if store.image_layers(id)?.is_empty() {
            std::fs::create_dir_all(&empty).map_err(Error::io(format!("create {}", empty.display())))?;
            Some(empty.as_path())
        } else {
            None
        };
        let (upper, work) = (m.dir.join("upper"), m.dir.join("work"));
        let rw = writable.then_some(image::overlay::Upper {
            dir: &upper,
            work: &work,
            volatile: false,
        });
        store.mount_with_top(id, top, &m.merged, rw)?;
        m.mounted = true;
        Ok(m)
    }

    fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            rustix::mount::unmount(&self.merged, rustix::mount::UnmountFlags::DETACH).map_err(|e| Error::Io {
                what: format!("unmount {}", self.merged.display()),
                source: e.into(),
            })?;
            self.mounted = false;
        }
        Ok(())
    }

    /// Unmount and hand over the upper directory (moved to `to`).
    pub fn into_upper(mut self, to: &Path) -> Result<()> {
        self.unmount()?;
        let up = self.dir.join("upper");
        std::fs::rename(&up, to).map_err(Error::io(format!("move {}", up.display())))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = self.unmount();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
