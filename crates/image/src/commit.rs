//! Images made here rather than pulled: a layer from a directory (a build step's overlay upper
//! directory), and an image from its configuration and layers.
//!
//! The upper directory is already in the format of the layer store (overlay whiteouts and opaque
//! directories), so after its tar is written as the layer blob the directory itself is moved
//! under the layer's chain ID: nothing is unpacked twice.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashWriter};
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, ImageConfig, Manifest};
use crate::store::{BlobWriter, ImageLayer, NewImage, Store};

const OPAQUE: &str = "trusted.overlay.opaque";

/// Overlay's own bookkeeping (origin, impure, redirect …): meaningless in another mount.
fn is_overlay_private(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

struct TarWalk<W: Write> {
    tar: tar::Builder<W>,
    root: PathBuf,
    /// (dev, inode) of files with several links → the path first written, for hard links.
    links: HashMap<(u64, u64), PathBuf>,
    bytes: u64,
}

fn io_err(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io(format!("layer from {}", what.display()), e)
}

impl<W: Write> TarWalk<W> {
    fn header(md: &std::fs::Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(md.mode() & 0o7777);
        h.set_uid(md.uid() as u64);
        h.set_gid(md.gid() as u64);
        h.set_mtime(md.mtime().max(0) as u64);
        h.set_size(0);
        h
    }

    /// Extended attributes worth keeping (capabilities, ACLs, user.*) as PAX records; overlay's
    /// own are removed from the directory too, since it becomes a lower layer as it is.
    fn xattrs(&mut self, path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
        let mut names = vec![0u8; 4096];
        let n = match rustix::fs::llistxattr(path, &mut names) {
            Ok(n) => n,
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(Error::Io(format!("list xattrs of {}", path.display()), e.into())),
        };
        let mut out = Vec::new();
        for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
            if is_overlay_private(name) && name != OPAQUE.as_bytes() {
                let _ = rustix::fs::lremovexattr(path, OsStr::from_bytes(name));
                continue;
            }
            let mut val = vec![0u8; 65536];
            let Ok(len) = rustix::fs::lgetxattr(path, OsStr::from_bytes(name), &mut val) else {
                continue;
            };
            val.truncate(len);
            out.push((String::from_utf8_lossy(name).into_owned(), val));
        }
        Ok(out)
    }

    fn pax(&mut self, xattrs: &[(String, Vec<u8>)]) -> Result<()> {
        if xattrs.is_empty() {
            return Ok(());
        }
        let recs: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        self.tar
            .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), *v)))
            .map_err(io_err(&self.root))
    }

    fn empty_file(&mut self, rel: &Path) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(0);
        self.tar
            .append_data(&mut h, rel, std::io::empty())
            .map_err(io_err(&self.root))
    }

    fn dir(&mut self, rel: &Path) -> Result<()> {
        let full = self.root.join(rel);
        let mut names: Vec<OsString> = std::fs::read_dir(&full)
            .map_err(io_err(&full))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(io_err(&full))?;
        // Sorted, so the same tree always gives the same tar and the same digest.
        names.sort();
        for name in names {
            self.entry(&rel.join(&name), &name)?;
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, name: &OsStr) -> Result<()> {
        let full = self.root.join(rel);
        let md = std::fs::symlink_metadata(&full).map_err(io_err(&full))?;
        let ft = md.file_type();
        if ft.is_char_device() && md.rdev() == 0 {
            // Overlay's whiteout becomes the OCI one.
            let mut wh = OsString::from(".wh.");
            wh.push(name);
            return self.empty_file(&rel.with_file_name(wh));
        }
        let xattrs = self.xattrs(&full)?;
        if ft.is_dir() {
            let opaque = xattrs.iter().any(|(k, v)| k == OPAQUE && v == b"y");
            let kept: Vec<_> = xattrs.into_iter().filter(|(k, _)| k != OPAQUE).collect();
            self.pax(&kept)?;
            let mut h = Self::header(&md, tar::EntryType::Directory);
            self.tar
                .append_data(&mut h, rel, std::io::empty())
                .map_err(io_err(&full))?;
            if opaque {
                self.empty_file(&rel.join(".wh..wh..opq"))?;
            }
            return self.dir(rel);
        }
        self.pax(&xattrs)?;
        if ft.is_file() {
            if md.nlink() > 1 {
                if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                    let first = first.clone();
                    let mut h = Self::header(&md, tar::EntryType::Link);
                    return self.tar.append_link(&mut h, rel, &first).map_err(io_err(&full));
                }
                self.links.insert((md.dev(), md.ino()), rel.to_path_buf());
            }
            let mut h = Self::header(&md, tar::EntryType::Regular);
            h.set_size(md.len());
            let f = File::open(&full).map_err(io_err(&full))?;
            self.bytes += md.len();
            return self.tar.append_data(&mut h, rel, f).map_err(io_err(&full));
        }
        if ft.is_symlink() {
            let target = std::fs::read_link(&full).map_err(io_err(&full))?;
            let mut h = Self::header(&md, tar::EntryType::Symlink);
            return self.tar.append_link(&mut h, rel, &target).map_err(io_err(&full));
        }
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else if ft.is_fifo() {
            tar::EntryType::Fifo
        } else {
            // Sockets belong to a running process; layers do not carry them.
            return Ok(());
        };
        let mut h = Self::header(&md, kind);
        let dev = rustix::fs::Dev::from(md.rdev());
        h.set_device_major(rustix::fs::major(dev)).map_err(io_err(&full))?;
        h.set_device_minor(rustix::fs::minor(dev)).map_err(io_err(&full))?;
        self.tar
            .append_data(&mut h, rel, std::io::empty())
            .map_err(io_err(&full))
    }
}

impl Store {
    /// Make `dir` (an unmounted overlay upper directory) the layer above `parent` (a chain ID):
    /// its tar, gzip-compressed, becomes the blob, and the directory moves under the new chain
    /// ID. `None` when the directory is empty: the step changed nothing. On error `dir` is left
    /// where it was, for the caller to remove.
    pub fn layer_from_dir(&self, dir: &Path, parent: Option<&Digest>) -> Result<Option<ImageLayer>> {
        let empty = std::fs::read_dir(dir).map_err(io_err(dir))?.next().is_none();
        if empty {
            return Ok(None);
        }
        let gz = flate2::write::GzEncoder::new(BlobWriter::new(self)?, flate2::Compression::fast());
        let mut walk = TarWalk {
            tar: tar::Builder::new(HashWriter::new(gz)),
            root: dir.to_path_buf(),
            links: HashMap::new(),
            bytes: 0,
        };
        walk.tar.mode(tar::HeaderMode::Complete);
        walk.dir(Path::new(""))?;
        let bytes = walk.bytes;
        let hashed = walk.tar.into_inner().map_err(io_err(dir))?;
        let (gz, diff_id, tar_size) = hashed.finish();
        let blob = gz.finish().map_err(io_err(dir))?;
        let (blob_digest, blob_size) = blob.commit("layer", None)?;
        let chain_id = match parent {
            None => diff_id.clone(),
            Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
        };
        let dest = self.layer_path(&chain_id);
        if dest.is_dir() {
            // The same change was made before (a rebuild with --no-cache): keep the one in place.
            std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
        } else if let Err(e) = std::fs::rename(dir, &dest) {
            if !dest.is_dir() {
                return Err(Error::Path { path: dest, source: e });
            }
            std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
        }
        Ok(Some(ImageLayer {
            chain_id,
            diff_id,
            blob: blob_digest,
            media_type: manifest::OCI_LAYER_GZIP.into(),
            blob_size,
            size: bytes,
            tar_size,
        }))
    }

    /// Write an image's configuration and manifest and record it, tagged with `tags`. The
    /// configuration's `rootfs.diff_ids` are set from `layers`. Returns the image ID.
    pub fn write_image(&self, mut config: ImageConfig, layers: Vec<ImageLayer>, tags: &[String]) -> Result<Digest> {
        config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
        let bytes = serde_json::to_vec(&config).map_err(|e| Error::Invalid(format!("image configuration: {e}")))?;
        let id = self.put_blob(&bytes, "image configuration", None)?;
        let m = Manifest {
            schema_version: 2,
            media_type: Some(manifest::OCI_MANIFEST.into()),
            config: Descriptor::new(manifest::OCI_CONFIG, id.clone(), bytes.len() as u64),
            layers: layers
                .iter()
                .map(|l| Descriptor::new(&l.media_type, l.blob.clone(), l.blob_size))
                .collect(),
            other: Default::default(),
        };
        let mbytes = serde_json::to_vec(&m).map_err(|e| Error::Invalid(format!("manifest: {e}")))?;
        let manifest_digest = self.put_blob(&mbytes, "manifest", None)?;
        self.commit_image(&NewImage {
            id: id.clone(),
            manifest_digest,
            manifest_media_type: manifest::OCI_MANIFEST.into(),
            created: config.created.clone(),
            layers,
            // The first tag in the same transaction as the image: never an untagged moment.
            tag: tags.first().cloned(),
            repo_digest: None,
        })?;
        for t in tags.iter().skip(1) {
            self.set_tag(t, &id)?;
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(store: &Store, l: &ImageLayer) -> Vec<(String, tar::EntryType)> {
        let f = store.open_blob(&l.blob).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        let mut out = Vec::new();
        for e in tar.entries().unwrap() {
            let e = e.unwrap();
            out.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                e.header().entry_type(),
            ));
        }
        out
    }

    #[test]
    fn an_upper_directory_becomes_a_layer_with_oci_whiteouts() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let up = tmp.path().join("store/tmp/upper");
        std::fs::create_dir_all(up.join("etc/sub")).unwrap();
        std::fs::write(up.join("etc/a"), "hello").unwrap();
        std::fs::hard_link(up.join("etc/a"), up.join("etc/b")).unwrap();
        std::os::unix::fs::symlink("a", up.join("etc/link")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            up.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        rustix::fs::setxattr(up.join("etc/sub"), OPAQUE, b"y", rustix::fs::XattrFlags::empty()).unwrap();

        let parent = Digest::of(b"parent");
        let l = store.layer_from_dir(&up, Some(&parent)).unwrap().unwrap();
        assert!(!up.exists(), "the directory moves into the store");
        assert_eq!(l.chain_id, Digest::of(format!("{parent} {}", l.diff_id).as_bytes()));
        let placed = store.layer_path(&l.chain_id);
        assert_eq!(std::fs::read_to_string(placed.join("etc/a")).unwrap(), "hello");

        let names = entries(&store, &l);
        let want = [
            ("etc", tar::EntryType::Directory),
            ("etc/a", tar::EntryType::Regular),
            ("etc/b", tar::EntryType::Link),
            ("etc/link", tar::EntryType::Symlink),
            ("etc/sub", tar::EntryType::Directory),
            ("etc/sub/.wh..wh..opq", tar::EntryType::Regular),
            (".wh.gone", tar::EntryType::Regular),
        ];
        for (p, k) in want {
            assert!(names.contains(&(p.to_string(), k)), "{p} missing from {names:?}");
        }
        // The blob's content hashes to the diff ID.
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(store.open_blob(&l.blob).unwrap())
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(Digest::of(&raw), l.diff_id);
        assert_eq!(raw.len() as u64, l.tar_size);
    }

    #[test]
    fn an_empty_directory_is_no_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let up = tmp.path().join("up");
        std::fs::create_dir_all(&up).unwrap();
        assert!(store.layer_from_dir(&up, None).unwrap().is_none());
    }
}
