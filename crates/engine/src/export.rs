//! `export`: a container's filesystem as a tar stream, as `docker export` gives it: the image's
//! files with the container's changes, without its volumes or the kernel filesystems mounted in
//! it. The walk goes from directory fd to directory fd with O_NOFOLLOW, never by host path, so a
//! running container that swaps a file for a symlink cannot make the export read a host file.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

use crate::db::Container;
use crate::error::{Context, Result};
use crate::Engine;

/// Write the container's filesystem to `out` as a tar archive.
pub fn export(e: &Engine, ct: &Container, out: &mut dyn Write) -> Result<()> {
    let root = crate::copy::open_stored_root(e, ct)?;
    let r = write_tree(&root.fd, out).ctx(|| format!("export container {}", ct.name));
    root.release(e, ct)?;
    r
}

fn write_tree(root: &OwnedFd, out: &mut dyn Write) -> io::Result<()> {
    let dir = rustix::fs::openat(
        root,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut b = tar::Builder::new(out);
    let mut w = Walk {
        b: &mut b,
        links: HashMap::new(),
    };
    w.dir(dir, Path::new(""))?;
    b.finish()
}

struct Walk<'a, 'b> {
    b: &'a mut tar::Builder<&'b mut dyn Write>,
    /// (device, inode) → the path it was first written at, to store hard links as links.
    links: HashMap<(u64, u64), PathBuf>,
}

fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

impl Walk<'_, '_> {
    fn dir(&mut self, dir: OwnedFd, prefix: &Path) -> io::Result<()> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for ent in rustix::fs::Dir::read_from(&dir)? {
            let n = ent?.file_name().to_bytes().to_vec();
            if n != b"." && n != b".." {
                names.push(n);
            }
        }
        // Sorted, so two exports of the same files are the same archive but for times.
        names.sort();
        for n in names {
            let name = OsStr::from_bytes(&n);
            let path = prefix.join(name);
            let st = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Gone since the listing (a running container): nothing to export.
                Err(rustix::io::Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            self.entry(&dir, name, &path, &st)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: &OwnedFd, name: &OsStr, path: &Path, st: &Stat) -> io::Result<()> {
        let kind = FileType::from_raw_mode(st.st_mode);
        let key = (st.st_dev, st.st_ino);
        if kind != FileType::Directory && st.st_nlink > 1 {
            if let Some(first) = self.links.get(&key) {
                let mut h = header(st, tar::EntryType::Link);
                return self.b.append_link(&mut h, path, first);
            }
            self.links.insert(key, path.to_path_buf());
        }
        match kind {
            FileType::Directory => {
                let mut h = header(st, tar::EntryType::Directory);
                self.b.append_data(&mut h, path, io::empty())?;
                let sub = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                self.dir(sub, path)
            }
            FileType::RegularFile => {
                let fd = rustix::fs::openat(
                    dir,
                    name,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )?;
                let size = u64::try_from(st.st_size).unwrap_or(0);
                let mut h = header(st, tar::EntryType::Regular);
                h.set_size(size);
                // Exactly `size` bytes whatever a running container does to the file meanwhile:
                // a shorter file is padded with zeros, a longer one cut.
                let data = File::from(fd).take(size).chain(io::repeat(0)).take(size);
                self.b.append_data(&mut h, path, data)
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(dir, name, Vec::new())?;
                let mut h = header(st, tar::EntryType::Symlink);
                self.b.append_link(&mut h, path, OsStr::from_bytes(target.to_bytes()))
            }
            FileType::CharacterDevice | FileType::BlockDevice => {
                let t = if kind == FileType::CharacterDevice {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                };
                let mut h = header(st, t);
                let dev = st.st_rdev;
                h.set_device_major(rustix::fs::major(dev))?;
                h.set_device_minor(rustix::fs::minor(dev))?;
                self.b.append_data(&mut h, path, io::empty())
            }
            FileType::Fifo => {
                let mut h = header(st, tar::EntryType::Fifo);
                self.b.append_data(&mut h, path, io::empty())
            }
            // Sockets do not go into archives (docker export leaves them out too).
            _ => Ok(()),
        }
    }
}
