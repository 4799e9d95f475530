//! Creating one node of a layer (directory, file, link, device, whiteout) below an already
//! resolved parent directory, and giving it its owner, mode, extended attributes and times.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::path::{explain, open_beneath};

/// The metadata a tar header (and its PAX records) gives a node.
#[derive(Debug, Clone)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timespec,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Meta {
    fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.mtime,
            last_modification: self.mtime,
        }
    }
}

fn owner(m: &Meta) -> (Option<Uid>, Option<Gid>) {
    (Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
}

/// Overlay's own attributes would let a layer redirect lookups into other layers: never copied.
fn allowed_xattr(name: &str) -> bool {
    !name.starts_with("trusted.overlay.") && !name.starts_with("user.overlay.")
}

fn set_xattrs(fd: impl AsFd, m: &Meta) -> Result<(), String> {
    for (k, v) in &m.xattrs {
        if !allowed_xattr(k) {
            continue;
        }
        match rustix::fs::fsetxattr(&fd, k.as_str(), v, XattrFlags::empty()) {
            Ok(()) => {}
            // Labels this host cannot store (no SELinux, a filesystem without xattrs) are not fatal.
            Err(Errno::NOTSUP) | Err(Errno::PERM) if !k.starts_with("user.") => {}
            Err(e) => return Err(format!("set extended attribute {k}: {e}")),
        }
    }
    Ok(())
}

/// What is at `name` now, without following a symlink.
pub fn existing(dir: &OwnedFd, name: &OsStr) -> Option<FileType> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .map(|s| FileType::from_raw_mode(s.st_mode))
}

/// Remove whatever is at `name` (a whole tree if it is a directory).
pub fn remove(dir: &OwnedFd, name: &OsStr) -> Result<(), String> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => {
            let sub = rustix::fs::openat(
                dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(explain)?;
            let names: Vec<std::ffi::OsString> = rustix::fs::Dir::read_from(&sub)
                .map_err(explain)?
                .filter_map(|e| e.ok())
                .map(|e| <OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(e.file_name().to_bytes()).to_os_string())
                .filter(|n| n != "." && n != "..")
                .collect();
            for n in names {
                remove(&sub, &n)?;
            }
            rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(explain)
        }
        Err(e) => Err(explain(e)),
    }
}

/// Make room for a new node: keep an existing directory when a directory is wanted, remove the rest.
pub fn make_room(dir: &OwnedFd, name: &OsStr, want_dir: bool) -> Result<bool, String> {
    match existing(dir, name) {
        None => Ok(false),
        Some(FileType::Directory) if want_dir => Ok(true),
        Some(_) => remove(dir, name).map(|()| false),
    }
}

pub fn directory(dir: &OwnedFd, name: &OsStr, m: &Meta) -> Result<(), String> {
    if !make_room(dir, name, true)? {
        rustix::fs::mkdirat(dir, name, Mode::from_bits_truncate(0o700)).map_err(explain)?;
    }
    let (u, g) = owner(m);
    rustix::fs::chownat(dir, name, u, g, AtFlags::SYMLINK_NOFOLLOW).map_err(explain)?;
    if !m.xattrs.is_empty() {
        let fd = open_beneath(dir, Path::new(name), OFlags::RDONLY | OFlags::DIRECTORY).map_err(explain)?;
        set_xattrs(&fd, m)?;
    }
    // Mode and times are set once the layer is complete: children would change the times, and a
    // read-only mode would stop an unprivileged unpacker from filling the directory.
    Ok(())
}

/// Write a regular file from `data`; returns the number of bytes written.
pub fn regular(dir: &OwnedFd, name: &OsStr, m: &Meta, data: &mut dyn Read, size: u64) -> Result<u64, String> {
    make_room(dir, name, false)?;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(explain)?;
    let mut f = File::from(fd);
    let n = copy(&mut data.take(size), &mut f).map_err(|e| format!("write: {e}"))?;
    if n != size {
        return Err(format!("truncated: {n} of {size} bytes"));
    }
    finish_file(&f, m)?;
    Ok(n)
}

/// io::copy with a larger buffer: file data comes from a decompressor, not an fd, so std's
/// 8 KiB loop would cost a write per 8 KiB.
fn copy(r: &mut dyn Read, w: &mut File) -> io::Result<u64> {
    thread_local! {
        // One buffer per unpacking thread: a fresh zeroed 128 KiB per file showed up as 2% of a pull.
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; 128 * 1024]);
    }
    BUF.with(|b| copy_with(r, w, &mut b.borrow_mut()))
}

fn copy_with(r: &mut dyn Read, w: &mut File, buf: &mut [u8]) -> io::Result<u64> {
    use std::io::Write;
    let mut n = 0u64;
    loop {
        let k = match r.read(buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
}

/// Owner first: chown clears set-uid bits that the mode then puts back.
fn finish_file(f: &File, m: &Meta) -> Result<(), String> {
    let (u, g) = owner(m);
    rustix::fs::fchown(f, u, g).map_err(explain)?;
    rustix::fs::fchmod(f, Mode::from_bits_truncate(m.mode & 0o7777)).map_err(explain)?;
    set_xattrs(f, m)?;
    rustix::fs::futimens(f, &m.times()).map_err(explain)
}

pub fn symlink(dir: &OwnedFd, name: &OsStr, target: &OsStr, m: &Meta) -> Result<(), String> {
    make_room(dir, name, false)?;
    rustix::fs::symlinkat(target, dir, name).map_err(explain)?;
    let (u, g) = owner(m);
    rustix::fs::chownat(dir, name, u, g, AtFlags::SYMLINK_NOFOLLOW).map_err(explain)?;
    rustix::fs::utimensat(dir, name, &m.times(), AtFlags::SYMLINK_NOFOLLOW).map_err(explain)
}

/// A hard link to `target` (already resolved to its parent and name inside this layer).
pub fn hardlink(dir: &OwnedFd, name: &OsStr, tdir: &OwnedFd, tname: &OsStr) -> Result<(), Errno> {
    if existing(dir, name).is_some() {
        remove(dir, name).map_err(|_| Errno::EXIST)?;
    }
    rustix::fs::linkat(tdir, tname, dir, name, AtFlags::empty())
}

/// A hard link whose target lives in a lower layer: overlay cannot link across layers, so the
/// file is copied with its metadata.
pub fn copy_from_lower(dir: &OwnedFd, name: &OsStr, src: OwnedFd) -> Result<(), String> {
    let st = rustix::fs::fstat(&src).map_err(explain)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err("hard link target in a lower layer is not a regular file".into());
    }
    let m = Meta {
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
        xattrs: Vec::new(),
    };
    let mut f = File::from(src);
    regular(dir, name, &m, &mut f, st.st_size as u64).map(|_| ())
}

pub fn device(dir: &OwnedFd, name: &OsStr, kind: FileType, major: u32, minor: u32, m: &Meta) -> Result<(), String> {
    make_room(dir, name, false)?;
    let dev = rustix::fs::makedev(major, minor);
    match rustix::fs::mknodat(dir, name, kind, Mode::from_bits_truncate(m.mode & 0o7777), dev) {
        Ok(()) => {}
        Err(Errno::PERM) => {
            return Err(format!(
                "device node {major}:{minor} refused: this user may not create device nodes (needs CAP_MKNOD)"
            ))
        }
        Err(e) => return Err(explain(e)),
    }
    let (u, g) = owner(m);
    rustix::fs::chownat(dir, name, u, g, AtFlags::SYMLINK_NOFOLLOW).map_err(explain)?;
    rustix::fs::utimensat(dir, name, &m.times(), AtFlags::SYMLINK_NOFOLLOW).map_err(explain)
}

/// Overlay's whiteout: a 0:0 character device hides the name in lower layers.
pub fn whiteout(dir: &OwnedFd, name: &OsStr) -> Result<(), String> {
    make_room(dir, name, false)?;
    rustix::fs::mknodat(
        dir,
        name,
        FileType::CharacterDevice,
        Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .map_err(|e| format!("create whiteout: {}", explain(e)))
}

/// Overlay's opaque directory: nothing below it shows through from lower layers.
pub fn opaque(dir: &OwnedFd) -> Result<(), String> {
    let fd = open_beneath(dir, Path::new(""), OFlags::RDONLY | OFlags::DIRECTORY).map_err(explain)?;
    rustix::fs::fsetxattr(&fd, "trusted.overlay.opaque", b"y", XattrFlags::empty())
        .map_err(|e| format!("mark directory opaque: {}", explain(e)))
}

/// Give a directory its final mode and times.
pub fn finish_dir(root: &OwnedFd, rel: &Path, m: &Meta) -> Result<(), String> {
    let fd = open_beneath(root, rel, OFlags::RDONLY | OFlags::DIRECTORY).map_err(explain)?;
    rustix::fs::fchmod(&fd, Mode::from_bits_truncate(m.mode & 0o7777)).map_err(explain)?;
    rustix::fs::futimens(&fd, &m.times()).map_err(explain)
}
