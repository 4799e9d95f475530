//! `cp` between a container and the host, both ways, as Docker's: `C:/src /dst` and `/src C:/dst`,
//! `src/.` for a directory's contents. A running container is reached through its init's
//! /proc/PID/root (its own view, volumes and tmpfs included); a stopped one through its root
//! filesystem, mounted for the copy. Every container-side path is resolved with
//! openat2(RESOLVE_IN_ROOT), so no symlink in the container can lead the copy out of it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use crate::db::Container;
use crate::error::{Context, Error, Result};
use crate::{rootfs, Engine};

/// The container's root as a directory fd, and whether we mounted it for this copy.
pub(crate) struct Root {
    pub(crate) fd: OwnedFd,
    mounted_here: bool,
}

impl Root {
    /// Unmount the root filesystem if it was mounted for this use only.
    pub(crate) fn release(self, e: &Engine, ct: &Container) -> Result<()> {
        if self.mounted_here {
            rootfs::unmount(e, &ct.id)?;
        }
        Ok(())
    }
}

fn open_root(e: &Engine, ct: &Container) -> Result<Root> {
    if ct.state.is_active() && ct.pid > 0 {
        let p = format!("/proc/{}/root", ct.pid);
        let fd = rustix::fs::open(&p, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .ctx(|| format!("open the root of container {}", ct.name))?;
        return Ok(Root {
            fd,
            mounted_here: false,
        });
    }
    open_stored_root(e, ct)
}

/// The container's own root filesystem (image layers and its upper directory, without the
/// volumes and kernel filesystems mounted inside it), mounted for the caller if it is not.
pub(crate) fn open_stored_root(e: &Engine, ct: &Container) -> Result<Root> {
    let merged = e.paths.rootfs(&ct.id);
    let was_mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(&*merged.to_string_lossy()));
    rootfs::mount(e, &ct.id, &ct.config.image_id, ct.config.auto_remove)?;
    let fd = crate::inroot::open_root(&merged)?;
    Ok(Root {
        fd,
        mounted_here: !was_mounted,
    })
}

fn in_root(root: &OwnedFd, p: &Path, flags: OFlags) -> std::result::Result<OwnedFd, rustix::io::Errno> {
    runtime::inroot::open_in(root, p, flags)
}

/// Copy from the container to the host.
pub fn from_container(e: &Engine, ct: &Container, src: &str, dst: &Path) -> Result<()> {
    let root = open_root(e, ct)?;
    let r = copy_out(&root.fd, &ct.name, src, dst);
    root.release(e, ct)?;
    r
}

fn copy_out(root: &OwnedFd, name: &str, src: &str, dst: &Path) -> Result<()> {
    let contents_only = src.ends_with("/.");
    let src_path = Path::new(src.trim_end_matches("/."));
    let fd = in_root(root, src_path, OFlags::PATH | OFlags::NOFOLLOW)
        .ctx(|| format!("{name}:{src}: no such file or directory in the container"))?;
    let st = rustix::fs::fstat(&fd).ctx(|| format!("stat {src}"))?;
    let is_dir = rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory;
    let target = if contents_only || !dst.is_dir() {
        dst.to_path_buf()
    } else {
        dst.join(src_path.file_name().unwrap_or(src_path.as_os_str()))
    };
    if !is_dir {
        let f = in_root(root, src_path, OFlags::RDONLY | OFlags::NOFOLLOW)
            .ctx(|| format!("open {src} in the container"))?;
        return copy_file_out(f, &target, st.st_mode);
    }
    let dir =
        in_root(root, src_path, OFlags::RDONLY | OFlags::DIRECTORY).ctx(|| format!("open {src} in the container"))?;
    copy_dir_out(dir, &target)
}

fn copy_file_out(f: OwnedFd, target: &Path, mode: u32) -> Result<()> {
    let mut src = File::from(f);
    let mut out = File::create(target).ctx(|| format!("create {}", target.display()))?;
    io::copy(&mut src, &mut out).ctx(|| format!("write {}", target.display()))?;
    let _ = std::fs::set_permissions(target, std::fs::Permissions::from_mode(mode & 0o7777));
    Ok(())
}

fn copy_dir_out(dir: OwnedFd, target: &Path) -> Result<()> {
    std::fs::create_dir_all(target).ctx(|| format!("create {}", target.display()))?;
    let d = rustix::fs::Dir::read_from(&dir).ctx(|| "read a directory in the container".into())?;
    for ent in d {
        let ent = ent.ctx(|| "read a directory in the container".into())?;
        let name = ent.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let out = target.join(name);
        let st = rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .ctx(|| format!("stat {}", out.display()))?;
        match rustix::fs::FileType::from_raw_mode(st.st_mode) {
            rustix::fs::FileType::Directory => {
                let sub = rustix::fs::openat(
                    &dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx(|| format!("open {}", out.display()))?;
                copy_dir_out(sub, &out)?;
            }
            rustix::fs::FileType::RegularFile => {
                let f = rustix::fs::openat(
                    &dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .ctx(|| format!("open {}", out.display()))?;
                copy_file_out(f, &out, st.st_mode)?;
            }
            rustix::fs::FileType::Symlink => {
                let link =
                    rustix::fs::readlinkat(&dir, name, Vec::new()).ctx(|| format!("readlink {}", out.display()))?;
                let _ = std::fs::remove_file(&out);
                std::os::unix::fs::symlink(
                    <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(link.to_bytes()),
                    &out,
                )
                .ctx(|| format!("symlink {}", out.display()))?;
            }
            // Devices, fifos and sockets are not copied, as docker cp does not.
            _ => {}
        }
    }
    Ok(())
}

/// Copy from the host into the container.
pub fn into_container(e: &Engine, ct: &Container, src: &Path, dst: &str) -> Result<()> {
    let md = std::fs::symlink_metadata(src).ctx(|| format!("{}: no such file or directory", src.display()))?;
    let root = open_root(e, ct)?;
    let r = copy_in(&root.fd, src, &md, dst);
    root.release(e, ct)?;
    r
}

fn copy_in(root: &OwnedFd, src: &Path, md: &std::fs::Metadata, dst: &str) -> Result<()> {
    let contents_only = src.to_string_lossy().ends_with("/.");
    let dst_path = Path::new(dst);
    let dst_is_dir = in_root(root, dst_path, OFlags::RDONLY | OFlags::DIRECTORY).is_ok();
    let target = if dst_is_dir && !contents_only {
        dst_path.join(src.file_name().unwrap_or(src.as_os_str()))
    } else {
        dst_path.to_path_buf()
    };
    if md.is_dir() {
        copy_dir_in(root, src, &target)
    } else {
        copy_file_in(root, src, &target, md.mode())
    }
}

fn parent_fd(root: &OwnedFd, target: &Path) -> Result<(OwnedFd, std::ffi::OsString)> {
    let name = target
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("cannot copy onto {}", target.display())))?
        .to_os_string();
    let parent = target.parent().unwrap_or(Path::new("/"));
    let fd = in_root(root, parent, OFlags::PATH | OFlags::DIRECTORY)
        .ctx(|| format!("{}: no such directory in the container", parent.display()))?;
    Ok((fd, name))
}

fn copy_file_in(root: &OwnedFd, src: &Path, target: &Path, mode: u32) -> Result<()> {
    let (dir, name) = parent_fd(root, target)?;
    // The last component is created below the resolved parent, never followed if a symlink.
    let fd = rustix::fs::openat(
        &dir,
        &name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode & 0o7777),
    )
    .ctx(|| format!("create {} in the container", target.display()))?;
    let mut out = File::from(fd);
    let mut inp = File::open(src).ctx(|| format!("open {}", src.display()))?;
    io::copy(&mut inp, &mut out).ctx(|| format!("write {} in the container", target.display()))?;
    let _ = rustix::fs::fchmod(out.as_fd(), Mode::from_raw_mode(mode & 0o7777));
    Ok(())
}

fn copy_dir_in(root: &OwnedFd, src: &Path, target: &Path) -> Result<()> {
    let (dir, name) = parent_fd(root, target)?;
    match rustix::fs::mkdirat(&dir, &name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(err) => return Err(err).ctx(|| format!("create {} in the container", target.display())),
    }
    for ent in std::fs::read_dir(src).ctx(|| format!("read {}", src.display()))? {
        let ent = ent.ctx(|| format!("read {}", src.display()))?;
        let md = ent.metadata().ctx(|| format!("stat {}", ent.path().display()))?;
        let t = target.join(ent.file_name());
        if md.is_dir() {
            copy_dir_in(root, &ent.path(), &t)?;
        } else if md.is_file() {
            copy_file_in(root, &ent.path(), &t, md.mode())?;
        } else if md.file_type().is_symlink() {
            let link = std::fs::read_link(ent.path()).ctx(|| format!("readlink {}", ent.path().display()))?;
            let (d, n) = parent_fd(root, &t)?;
            let _ = rustix::fs::unlinkat(&d, &n, rustix::fs::AtFlags::empty());
            rustix::fs::symlinkat(&link, &d, &n).ctx(|| format!("symlink {} in the container", t.display()))?;
        }
    }
    Ok(())
}
