//! Applying a layer (a tar stream) to a directory, safely: every path is resolved below the layer
//! root without following symlinks (`path`), and every node is created by `node`. Whiteouts become
//! overlay whiteouts, so the directory can be used as an overlay lower layer as it is.

mod node;
pub mod path;

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, Timespec};
use rustix::io::Errno;
use tar::EntryType;

use crate::error::{Error, Result};
use node::Meta;
use path::{open_beneath, EntryPath};

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub entries: u64,
    pub bytes: u64,
}

struct Unpacker<'a> {
    layer: &'a str,
    root: OwnedFd,
    /// Lower layer directories, opened only when a hard link needs one (they may still be
    /// unpacking in parallel, and are rarely needed).
    lowers: Vec<PathBuf>,
    /// The last parent directory used: tar streams list a directory's entries together.
    cached: Option<(PathBuf, OwnedFd)>,
    dirs: Vec<(PathBuf, Meta)>,
    stats: Stats,
    /// Set when a hard link's target may be in a lower layer that is not in place yet.
    lower_pending: bool,
}

/// Unpack `stream` (an uncompressed tar) into the existing, empty directory `dest`. `lowers` are
/// the layers below (top-most first), used only for hard links to files they hold.
pub fn unpack(stream: impl Read, dest: &Path, layer: &str, lowers: &[PathBuf]) -> Result<Stats> {
    let open = |p: &Path| {
        rustix::fs::open(p, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
            Error::Path {
                path: p.to_path_buf(),
                source: e.into(),
            }
        })
    };
    let mut u = Unpacker {
        layer,
        root: open(dest)?,
        lowers: lowers.to_vec(),
        cached: None,
        dirs: Vec::new(),
        stats: Stats::default(),
        lower_pending: false,
    };
    let mut ar = tar::Archive::new(stream);
    let entries = ar.entries().map_err(|e| u.err("", format!("read tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| u.err("", format!("read tar: {e}")))?;
        u.entry(&mut entry)?;
    }
    for (rel, m) in u.dirs.iter().rev() {
        node::finish_dir(&u.root, rel, m).map_err(|e| u.err(&rel.to_string_lossy(), e))?;
    }
    Ok(u.stats)
}

fn pax_meta<R: Read>(e: &mut tar::Entry<R>, m: &mut Meta) -> std::io::Result<()> {
    let Some(exts) = e.pax_extensions()? else { return Ok(()) };
    for ext in exts {
        let ext = ext?;
        let (Ok(k), v) = (ext.key(), ext.value_bytes()) else {
            continue;
        };
        let num = || std::str::from_utf8(v).ok().and_then(|s| s.parse::<u32>().ok());
        match k {
            "uid" => m.uid = num().unwrap_or(m.uid),
            "gid" => m.gid = num().unwrap_or(m.gid),
            "mtime" => {
                if let Some((s, ns)) = std::str::from_utf8(v).ok().and_then(parse_time) {
                    m.mtime = Timespec { tv_sec: s, tv_nsec: ns };
                }
            }
            _ => {
                if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                    m.xattrs.push((name.to_string(), v.to_vec()));
                }
            }
        }
    }
    Ok(())
}

/// PAX times: "1700000000.123456789".
fn parse_time(s: &str) -> Option<(i64, i64)> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    Some((secs, digits.parse().ok()?))
}

fn lerr(layer: &str, entry: &str, reason: impl Into<String>) -> Error {
    Error::Layer {
        layer: layer.to_string(),
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

impl Unpacker<'_> {
    fn err(&self, entry: &str, reason: impl Into<String>) -> Error {
        lerr(self.layer, entry, reason)
    }

    fn meta<R: Read>(&self, e: &mut tar::Entry<R>, shown: &str) -> Result<Meta> {
        let h = e.header();
        let bad = |what: &str, err: std::io::Error| self.err(shown, format!("bad {what} in tar header: {err}"));
        let mut m = Meta {
            mode: h.mode().map_err(|x| bad("mode", x))?,
            // Empty numeric fields mean 0, as Go's archive/tar (which wrote most layers) reads them.
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: Timespec {
                tv_sec: h.mtime().unwrap_or(0) as i64,
                tv_nsec: 0,
            },
            xattrs: Vec::new(),
        };
        pax_meta(e, &mut m).map_err(|x| bad("PAX record", x))?;
        Ok(m)
    }

    fn parent(&mut self, rel: &Path) -> std::result::Result<&OwnedFd, String> {
        let hit = matches!(&self.cached, Some((p, _)) if p == rel);
        if !hit {
            let fd = path::mkdir_all(&self.root, rel)?;
            self.cached = Some((rel.to_path_buf(), fd));
        }
        Ok(&self.cached.as_ref().expect("just cached").1)
    }

    /// Forget the cached parent when `full` (about to be replaced or removed) is it or holds it.
    fn invalidate(&mut self, full: &Path) {
        if matches!(&self.cached, Some((p, _)) if p.starts_with(full)) {
            self.cached = None;
        }
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = e.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        self.stats.entries += 1;
        let ep = path::clean(&raw).map_err(|r| self.err(&shown, r))?;
        let meta = self.meta(e, &shown)?;
        let Some(ep) = ep else {
            // The layer root itself ("./"): only its mode and times matter.
            if kind == EntryType::Directory {
                self.dirs.push((PathBuf::new(), meta));
            }
            return Ok(());
        };
        let name = ep.name.as_bytes();
        if name == OPAQUE {
            let layer = self.layer;
            let dir = self.parent(&ep.parent).map_err(|r| lerr(layer, &shown, r))?;
            return node::opaque(dir).map_err(|r| lerr(layer, &shown, r));
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            return self.whiteout(&ep, hidden, &shown);
        }
        self.invalidate(&ep.full());
        let r = self.create(e, kind, &ep, meta, &shown);
        if r.is_err() && self.lower_pending {
            return Err(Error::LowerLayersPending(self.layer.to_string()));
        }
        r.map_err(|reason| self.err(&shown, reason))
    }

    fn whiteout(&mut self, ep: &EntryPath, hidden: &[u8], shown: &str) -> Result<()> {
        if hidden.starts_with(WHITEOUT) {
            // Other AUFS metadata (.wh..wh.plnk and such) carries nothing for overlay.
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(self.err(shown, "whiteout names no entry (or . / ..)"));
        }
        let target = OsStr::from_bytes(hidden);
        self.invalidate(&ep.parent.join(target));
        let layer = self.layer;
        let dir = self.parent(&ep.parent).map_err(|r| lerr(layer, shown, r))?;
        node::whiteout(dir, target).map_err(|r| lerr(layer, shown, r))
    }

    fn create<R: Read>(
        &mut self,
        e: &mut tar::Entry<R>,
        kind: EntryType,
        ep: &EntryPath,
        meta: Meta,
        shown: &str,
    ) -> std::result::Result<(), String> {
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let size = e.size();
        let name = ep.name.as_os_str();
        match kind {
            EntryType::Directory => {
                node::directory(self.parent(&ep.parent)?, name, &meta)?;
                self.dirs.push((ep.full(), meta));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let n = node::regular(self.parent(&ep.parent)?, name, &meta, e, size)?;
                self.stats.bytes += n;
            }
            EntryType::Symlink => {
                let target = link.ok_or("symlink without a target")?;
                node::symlink(self.parent(&ep.parent)?, name, OsStr::from_bytes(&target), &meta)?;
            }
            EntryType::Link => {
                let target = link.ok_or("hard link without a target")?;
                self.hardlink(ep, &target)?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let ft = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let h = e.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                node::device(self.parent(&ep.parent)?, name, ft, major, minor, &meta)?;
            }
            other => return Err(format!("unsupported tar entry type {other:?} ({shown})")),
        }
        Ok(())
    }

    fn hardlink(&mut self, ep: &EntryPath, target: &[u8]) -> std::result::Result<(), String> {
        let t = path::clean(target)
            .map_err(|r| format!("hard link target: {r}"))?
            .ok_or("hard link to the layer root")?;
        let tdir = open_beneath(&self.root, &t.parent, OFlags::PATH | OFlags::DIRECTORY);
        let res = match tdir {
            Ok(tdir) => {
                let dir = self.parent(&ep.parent)?;
                node::hardlink(dir, &ep.name, &tdir, &t.name)
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => Ok(()),
            Err(Errno::NOENT) => {
                let src = self
                    .lowers
                    .iter()
                    .filter_map(|l| {
                        rustix::fs::open(l, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()
                    })
                    .find_map(|l| open_beneath(&l, &t.full(), OFlags::RDONLY | OFlags::NOFOLLOW).ok());
                let Some(src) = src else {
                    self.lower_pending = self.lowers.iter().any(|l| !l.exists());
                    return Err(format!("hard link target {:?} does not exist", t.full()));
                };
                let dir = self.parent(&ep.parent)?;
                node::copy_from_lower(dir, &ep.name, src)
            }
            Err(e) => Err(format!("hard link to {:?}: {}", t.full(), path::explain(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_time("1700000000.5"), Some((1700000000, 500_000_000)));
        assert_eq!(parse_time("12"), Some((12, 0)));
        assert_eq!(parse_time("x"), None);
    }
}
