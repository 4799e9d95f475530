//! Overlay mounts of an image: its layer directories as lower layers (top-most first), plus an
//! upper and work directory for a writable container root. Built with the new mount API, one
//! `lowerdir+` per layer, so the number of layers is not limited by the mount options' page.

use std::path::Path;

use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags, FsOpenFlags,
    MountAttrFlags, MoveMountFlags,
};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::Store;

fn sys(what: &str) -> impl FnOnce(rustix::io::Errno) -> Error + '_ {
    move |e| Error::Io(format!("overlay mount: {what}"), e.into())
}

/// The writable top of an overlay mount.
#[derive(Debug, Clone, Copy)]
pub struct Upper<'a> {
    pub dir: &'a Path,
    pub work: &'a Path,
    /// Skip every sync of the upper layer, including the one at unmount (which waits for the
    /// disk: ~2 ms of every container's teardown here). Only for layers that are thrown away
    /// with the mount: after a crash the kernel refuses to mount such a layer again.
    pub volatile: bool,
}

impl Store {
    /// Layer directories of an image, top-most first.
    pub fn lower_dirs(&self, id: &Digest) -> Result<Vec<std::path::PathBuf>> {
        let layers = self.image_layers(id)?;
        let dirs: Vec<_> = layers.iter().rev().map(|l| self.layer_path(&l.chain_id)).collect();
        for d in &dirs {
            if !d.is_dir() {
                return Err(Error::Invalid(format!(
                    "layer directory {} is missing; pull the image again",
                    d.display()
                )));
            }
        }
        Ok(dirs)
    }

    /// Mount image `id` at `target`: writable with an upper layer, else read-only.
    pub fn mount(&self, id: &Digest, target: &Path, rw: Option<Upper>) -> Result<()> {
        self.mount_with_top(id, None, target, rw)
    }

    /// Like `mount`, with one more read-only layer above the image's (a container's init layer:
    /// the mount points every container needs, so starting one copies nothing up).
    pub fn mount_with_top(&self, id: &Digest, top: Option<&Path>, target: &Path, rw: Option<Upper>) -> Result<()> {
        let mut lowers = self.lower_dirs(id)?;
        if let Some(t) = top {
            lowers.insert(0, t.to_path_buf());
        }
        if lowers.is_empty() {
            return Err(Error::Invalid(format!("image {} has no layers to mount", id.short())));
        }
        let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).map_err(sys("fsopen"))?;
        for l in &lowers {
            fsconfig_set_string(&fs, "lowerdir+", l).map_err(sys(&format!("lower layer {}", l.display())))?;
        }
        if let Some(u) = &rw {
            fsconfig_set_string(&fs, "upperdir", u.dir).map_err(sys("upperdir"))?;
            fsconfig_set_string(&fs, "workdir", u.work).map_err(sys("workdir"))?;
            if u.volatile {
                fsconfig_set_flag(&fs, "volatile").map_err(sys("volatile"))?;
            }
        } else if lowers.len() == 1 {
            // Overlay wants two lower layers when there is no upper one: an empty one will do.
            let empty = self.root().join("empty");
            std::fs::create_dir_all(&empty).map_err(Error::path(&empty))?;
            fsconfig_set_string(&fs, "lowerdir+", &empty).map_err(sys("lowerdir"))?;
        }
        fsconfig_create(&fs).map_err(sys("create"))?;
        let attrs = if rw.is_some() {
            MountAttrFlags::empty()
        } else {
            MountAttrFlags::MOUNT_ATTR_RDONLY
        };
        let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(sys("fsmount"))?;
        move_mount(
            &mnt,
            "",
            rustix::fs::CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
        .map_err(|e| Error::Io(format!("mount image on {}", target.display()), e.into()))
    }
}
