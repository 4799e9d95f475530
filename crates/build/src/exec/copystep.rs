//! COPY and ADD: what a step copies (hashed into its cache key before anything runs) and the
//! layer it makes, from the context, a stage, an image, a URL or an archive.

use std::path::{Path, PathBuf};

use image::store::ImageLayer;
use image::Digest;

use super::{at, Builder, State};
use crate::error::{Error, Result};
use crate::fscopy::{Attrs, SourceRoot};
use crate::meta;
use crate::mounted::Mounted;
use crate::plan::{CopySpec, Loc};

impl Builder<'_> {
    /// `--from=WORD` that names no stage: a bare word is most likely a stage name mistyped, which
    /// Docker would try to pull from Docker Hub; only a local image of that name is taken. None
    /// for a reference with a registry, tag or digest (resolved, and pulled, as FROM is).
    pub(super) fn bare_from(&self, from: &str, loc: &Loc) -> Option<Result<Digest>> {
        if from.contains(['/', ':', '@', '.']) {
            return None;
        }
        Some(self.store.find(from).map(|i| i.id).map_err(|_| {
            Error::syntax(
                loc,
                format!("--from={from}: no stage of that name in the build file, and no local image"),
            )
        }))
    }

    /// Where COPY reads from, with everything it will copy hashed into `inputs`.
    pub(super) fn copy_inputs(
        &mut self,
        state: &State,
        c: &CopySpec,
        loc: &Loc,
        inputs: &mut Vec<u8>,
    ) -> Result<CopySource> {
        let _ = state;
        if let Some(from) = &c.from {
            let id = match self.stage_ref(from, usize::MAX) {
                Some(j) => self
                    .built
                    .get(&j)
                    .cloned()
                    .ok_or_else(|| Error::syntax(loc, format!("--from={from}: the stage is not built yet")))?,
                None => match self.bare_from(from, loc) {
                    Some(found) => found?,
                    None => (self.opts.resolve_image)(from, self.opts.pull).map_err(|e| at(loc, e))?,
                },
            };
            inputs.extend_from_slice(id.to_string().as_bytes());
            let m = Mounted::new(self.store, &id, false)?;
            let root = SourceRoot {
                fd: crate::inroot::open_root(&m.merged)?,
                ignore: None,
                label: format!("--from={from}"),
            };
            return Ok(CopySource::Image { root, _mount: m });
        }
        let ignore = read_ignore(&self.opts.context)?;
        let root = SourceRoot {
            fd: crate::inroot::open_root(&self.opts.context)?,
            ignore,
            label: "the build context".into(),
        };
        for s in &c.sources {
            if c.add && is_url(s) {
                continue;
            }
            for rel in root.expand(s).map_err(|e| at(loc, e))? {
                root.hash(&rel, inputs)?;
            }
        }
        // Built up inside the CopySource, whose drop removes the files if a later one fails.
        let mut src = CopySource::Context(root, Vec::new());
        for s in c.sources.iter().filter(|s| c.add && is_url(s)) {
            let tmp = self.store.tmp_path("add-download");
            let got = download(s, &tmp)
                .and_then(|()| std::fs::read(&tmp).map_err(Error::io(format!("read {}", tmp.display()))));
            if let CopySource::Context(_, d) = &mut src {
                d.push((s.clone(), tmp));
            }
            let data = got.map_err(|e| at(loc, e))?;
            inputs.extend_from_slice(Digest::of(&data).to_string().as_bytes());
        }
        Ok(src)
    }

    pub(super) fn copy_layer(
        &mut self,
        state: &State,
        c: &CopySpec,
        src: CopySource,
        loc: &Loc,
    ) -> Result<Option<ImageLayer>> {
        let m = Mounted::new(self.store, &state.id, true)?;
        let dest = crate::inroot::open_root(&m.merged)?;
        let (root, downloads, from_image) = match &src {
            CopySource::Context(r, d) => (r, d.as_slice(), false),
            CopySource::Image { root: r, .. } => (r, &[][..], true),
        };
        let owner = match &c.chown {
            Some(spec) => Some(crate::inroot::resolve_owner(&dest, spec).map_err(|e| at(loc, e))?),
            None if from_image => None,
            None => Some((0, 0)),
        };
        let mode = c
            .chmod
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m, 8).map_err(|_| Error::syntax(loc, format!("--chmod={m}: not an octal mode")))
            })
            .transpose()?;
        let a = Attrs { owner, mode };
        let workdir = state.config.config.as_ref().and_then(|c| c.working_dir.clone());
        let dest_path = meta::workdir(workdir.as_deref(), &c.dest);
        let mut items: Vec<PathBuf> = Vec::new();
        for s in &c.sources {
            if c.add && is_url(s) {
                continue;
            }
            items.extend(root.expand(s).map_err(|e| at(loc, e))?);
        }
        let count = items.len() + downloads.len() + c.inline.len();
        let dest_is_dir = c.dest.ends_with('/')
            || c.dest == "."
            || count > 1
            || crate::inroot::open_in(
                &dest,
                Path::new(&dest_path),
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
            )
            .is_ok();
        if count > 1 && !c.dest.ends_with('/') && !dest_is_dir {
            return Err(Error::syntax(
                loc,
                "when copying several sources, the destination must be a directory and end with /",
            ));
        }
        let into = |name: &std::ffi::OsStr| Path::new(&dest_path).join(name);
        for rel in &items {
            if c.add
                && !from_image
                && !root.is_dir(rel)
                && self.try_extract(root, rel, &dest, &dest_path, owner, loc)?
            {
                continue;
            }
            if root.is_dir(rel) {
                // A directory's contents are copied, not the directory itself.
                root.copy(rel, &dest, Path::new(&dest_path), a)
                    .map_err(|e| at(loc, e))?;
                continue;
            }
            let target = if dest_is_dir {
                into(rel.file_name().unwrap_or(rel.as_os_str()))
            } else {
                PathBuf::from(&dest_path)
            };
            root.copy(rel, &dest, &target, a).map_err(|e| at(loc, e))?;
        }
        for (url, tmp) in downloads {
            let name = url
                .split(['?', '#'])
                .next()
                .and_then(|u| u.rsplit('/').next())
                .filter(|n| !n.is_empty())
                .unwrap_or("index.html");
            let target = if dest_is_dir {
                into(std::ffi::OsStr::new(name))
            } else {
                PathBuf::from(&dest_path)
            };
            let mut f = std::fs::File::open(tmp).map_err(Error::io(format!("open {}", tmp.display())))?;
            crate::fscopy::write_file(&dest, &target, &mut f, 0o600, a, None).map_err(|e| at(loc, e))?;
        }
        for (name, content) in &c.inline {
            let target = if dest_is_dir {
                into(std::ffi::OsStr::new(name))
            } else {
                PathBuf::from(&dest_path)
            };
            crate::fscopy::write_file(&dest, &target, &mut content.as_bytes(), 0o644, a, None)
                .map_err(|e| at(loc, e))?;
        }
        drop(dest);
        drop(src);
        self.finish_mount(m, state)
    }

    /// ADD of a local tar archive (plain, gzip, xz or zstd): extracted into the destination.
    /// True when the file was one.
    pub(super) fn try_extract(
        &self,
        root: &SourceRoot,
        rel: &Path,
        dest: &std::os::fd::OwnedFd,
        dest_path: &str,
        owner: Option<(u32, u32)>,
        loc: &Loc,
    ) -> Result<bool> {
        let fd = crate::inroot::open_in(&root.fd, rel, rustix::fs::OFlags::RDONLY)
            .map_err(|e| crate::inroot::sys(&format!("open {}", rel.display()), e))?;
        let mut f = std::fs::File::from(fd);
        if !is_tar(&mut f)? {
            return Ok(false);
        }
        let mut made = Vec::new();
        let dir = crate::inroot::mkdir_all(dest, Path::new(dest_path), &mut made)?;
        let (_, tar) = image::compress::decompress(f).map_err(Error::io(format!("read {}", rel.display())))?;
        let at_dir = PathBuf::from(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir)));
        image::unpack::unpack(tar, &at_dir, &rel.to_string_lossy(), &[]).map_err(|e| at(loc, e.into()))?;
        if let Some((uid, gid)) = owner {
            // `ADD --chown` owns what the archive unpacked, as BuildKit does since v0.23: the
            // archive is read again for its entries' names, each chowned inside `dir`.
            let fd = crate::inroot::open_in(&root.fd, rel, rustix::fs::OFlags::RDONLY)
                .map_err(|e| crate::inroot::sys(&format!("open {}", rel.display()), e))?;
            let (_, tar) = image::compress::decompress(std::fs::File::from(fd))
                .map_err(Error::io(format!("read {}", rel.display())))?;
            chown_entries(tar, &dir, uid, gid).map_err(|e| at(loc, e))?;
        }
        Ok(true)
    }
}

pub(super) enum CopySource {
    /// The build context, and the URLs ADD downloaded (to these files, removed on drop).
    Context(SourceRoot, Vec<(String, PathBuf)>),
    /// A stage's or an image's files, mounted until the copy is done.
    Image { root: SourceRoot, _mount: Mounted },
}

impl Drop for CopySource {
    fn drop(&mut self) {
        if let CopySource::Context(_, d) = self {
            for (_, p) in d {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

pub(super) fn read_ignore(context: &Path) -> Result<Option<crate::ignore::Ignore>> {
    for name in [".lboxignore", ".dockerignore"] {
        let p = context.join(name);
        match std::fs::read_to_string(&p) {
            Ok(t) => {
                return crate::ignore::Ignore::parse(&t)
                    .map(Some)
                    .map_err(|m| Error::Invalid(format!("{}: {m}", p.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    what: format!("read {}", p.display()),
                    source: e,
                })
            }
        }
    }
    Ok(None)
}

/// Whether the file, once decompressed, starts with a tar header (the "ustar" magic).
fn is_tar(f: &mut std::fs::File) -> Result<bool> {
    use std::io::{Read, Seek};
    let (_, mut r) = image::compress::decompress(&mut *f).map_err(Error::io("read"))?;
    let mut block = [0u8; 512];
    let mut got = 0;
    while got < 512 {
        match r.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(_) => break,
        }
    }
    drop(r);
    f.seek(std::io::SeekFrom::Start(0)).map_err(Error::io("seek"))?;
    Ok(got == 512 && &block[257..262] == b"ustar")
}

pub(super) fn download(url: &str, to: &Path) -> Result<()> {
    let mut resp = ureq::get(url)
        .call()
        .map_err(|e| Error::Invalid(format!("download {url}: {e}")))?;
    let mut f = std::fs::File::create(to).map_err(Error::io(format!("create {}", to.display())))?;
    std::io::copy(&mut resp.body_mut().as_reader(), &mut f).map_err(Error::io(format!("download {url}")))?;
    Ok(())
}

/// Give every entry of the archive `tar`, as unpacked below `dir`, the owner uid:gid (links
/// themselves, not what they point at; paths resolved inside `dir`).
fn chown_entries(tar: impl std::io::Read, dir: &std::os::fd::OwnedFd, uid: u32, gid: u32) -> Result<()> {
    use rustix::fs::{AtFlags, OFlags};
    let mut a = tar::Archive::new(tar);
    let entries = a.entries().map_err(Error::io("read the archive"))?;
    for e in entries {
        let e = e.map_err(Error::io("read the archive"))?;
        let path = e.path().map_err(Error::io("read the archive"))?.into_owned();
        let rel = crate::inroot::rel(&path);
        let (Some(name), parent) = (rel.file_name(), rel.parent().unwrap_or(Path::new(""))) else {
            continue;
        };
        let Ok(pfd) = crate::inroot::open_in(dir, parent, OFlags::PATH | OFlags::DIRECTORY) else {
            continue;
        };
        let owner = (
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
        match rustix::fs::chownat(&pfd, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW) {
            // A whiteout entry, or one the unpack left out: nothing to own.
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(err) => return Err(crate::inroot::sys(&format!("chown {}", rel.display()), err)),
        }
    }
    Ok(())
}
