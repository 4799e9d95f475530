//! COPY and ADD: files from a source root (the build context, or another stage's image) into the
//! image being built, both sides opened inside their root (see `inroot`). Sources are globbed,
//! filtered by the ignore rules, hashed for the cache key, and copied with Docker's rules for
//! destinations, owners, modes and times.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use crate::error::{Error, Result};
use crate::ignore::Ignore;
use crate::inroot::{self, open_in, sys};

/// Where COPY reads from.
pub struct SourceRoot {
    pub fd: OwnedFd,
    /// The build context's ignore rules (`.dockerignore`); none for a stage or image.
    pub ignore: Option<Ignore>,
    /// For messages: "the build context", "stage builder".
    pub label: String,
}

/// Ownership and mode for copied files.
#[derive(Clone, Copy, Debug, Default)]
pub struct Attrs {
    /// None keeps the source's owner (COPY --from); the context's files get 0:0 by default.
    pub owner: Option<(u32, u32)>,
    pub mode: Option<u32>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl SourceRoot {
    fn ignored(&self, rel: &Path) -> bool {
        self.ignore
            .as_ref()
            .is_some_and(|i| !rel.as_os_str().is_empty() && i.is_excluded(&rel.to_string_lossy()))
    }

    /// Whether a walk leaves `rel` out: it is ignored, and it is not a directory that an
    /// exception (`!pattern`) may reach into.
    fn skip(&self, rel: &Path) -> bool {
        if !self.ignored(rel) {
            return false;
        }
        let exceptions = self
            .ignore
            .as_ref()
            .is_some_and(|i| i.may_contain_exceptions(&rel.to_string_lossy()));
        !(exceptions
            && self
                .lstat(rel)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory))
    }

    fn lstat(&self, rel: &Path) -> std::result::Result<rustix::fs::Stat, Errno> {
        let fd = open_in(&self.fd, rel, OFlags::PATH | OFlags::NOFOLLOW)?;
        rustix::fs::fstat(&fd)
    }

    /// The paths (relative to the root) a COPY source names: itself, or what its glob matches.
    pub fn expand(&self, src: &str) -> Result<Vec<PathBuf>> {
        if escapes(Path::new(src)) {
            return Err(Error::Invalid(format!("{src}: the path is outside {}", self.label)));
        }
        let rel = inroot::rel(Path::new(src));
        if !has_glob(src) {
            if self.skip(&rel) || self.lstat(&rel).is_err() {
                return Err(Error::Invalid(format!(
                    "{src}: no such file or directory in {}",
                    self.label
                )));
            }
            return Ok(vec![rel]);
        }
        let pattern = rel.to_string_lossy().into_owned();
        let glob = globset::GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| Error::Invalid(format!("{src}: bad pattern: {e}")))?
            .compile_matcher();
        let depth = rel.components().count();
        // Walk from the longest prefix without wildcards, only as deep as the pattern goes.
        let prefix: PathBuf = rel
            .components()
            .take_while(|c| !has_glob(&c.as_os_str().to_string_lossy()))
            .collect();
        let mut found = Vec::new();
        self.walk_glob(&prefix, depth, &glob, &mut found)?;
        found.sort();
        if found.is_empty() {
            return Err(Error::Invalid(format!("{src}: no file in {} matches", self.label)));
        }
        Ok(found)
    }

    fn walk_glob(&self, dir: &Path, depth: usize, glob: &globset::GlobMatcher, out: &mut Vec<PathBuf>) -> Result<()> {
        if dir.components().count() >= depth {
            return Ok(());
        }
        let Ok(fd) = open_in(&self.fd, dir, OFlags::RDONLY | OFlags::DIRECTORY) else {
            return Ok(());
        };
        for name in list(fd, dir)? {
            let p = dir.join(&name);
            if self.skip(&p) {
                continue;
            }
            if glob.is_match(&p) && !self.ignored(&p) {
                out.push(p.clone());
            }
            self.walk_glob(&p, depth, glob, out)?;
        }
        Ok(())
    }

    /// Feed everything `rel` holds (names, types, modes, contents, link targets) to `h`: the
    /// cache key of a COPY. Times and owners are left out, as Docker leaves them out.
    /// A named source that is a symlink is followed, as the copy follows it.
    pub fn hash(&self, rel: &Path, h: &mut dyn Write) -> Result<()> {
        self.hash_at(rel, h, true)
    }

    fn hash_at(&self, rel: &Path, h: &mut dyn Write, follow: bool) -> Result<()> {
        let st = if follow {
            open_in(&self.fd, rel, OFlags::PATH).and_then(|fd| rustix::fs::fstat(&fd))
        } else {
            self.lstat(rel)
        }
        .map_err(|e| sys(&format!("stat {}", rel.display()), e))?;
        let nofollow = if follow { OFlags::empty() } else { OFlags::NOFOLLOW };
        let ft = FileType::from_raw_mode(st.st_mode);
        let w = |h: &mut dyn Write, b: &[u8]| h.write_all(b).map_err(Error::io("hash"));
        w(h, rel.as_os_str().as_bytes())?;
        w(h, format!("\0{:o}\0", st.st_mode).as_bytes())?;
        match ft {
            FileType::RegularFile => {
                let fd = open_in(&self.fd, rel, OFlags::RDONLY | nofollow)
                    .map_err(|e| sys(&format!("open {}", rel.display()), e))?;
                let mut f = std::fs::File::from(fd);
                std::io::copy(&mut f, h).map_err(Error::io(format!("read {}", rel.display())))?;
            }
            FileType::Symlink => {
                let parent = open_in(
                    &self.fd,
                    rel.parent().unwrap_or(Path::new("")),
                    OFlags::PATH | OFlags::DIRECTORY,
                )
                .map_err(|e| sys(&format!("open {}", rel.display()), e))?;
                let t = rustix::fs::readlinkat(&parent, rel.file_name().unwrap_or(OsStr::new(".")), Vec::new())
                    .map_err(|e| sys(&format!("readlink {}", rel.display()), e))?;
                w(h, t.as_bytes())?;
            }
            FileType::Directory => {
                let fd = open_in(&self.fd, rel, OFlags::RDONLY | OFlags::DIRECTORY)
                    .map_err(|e| sys(&format!("open {}", rel.display()), e))?;
                for name in list(fd, rel)? {
                    let p = rel.join(name);
                    if !self.skip(&p) {
                        self.hash_at(&p, h, false)?;
                    }
                }
            }
            _ => {}
        }
        w(h, b"\n")
    }

    /// Whether `rel` is a directory (following a symlink, as COPY does for a named source).
    pub fn is_dir(&self, rel: &Path) -> bool {
        open_in(&self.fd, rel, OFlags::PATH | OFlags::DIRECTORY).is_ok()
    }

    /// Copy `rel` to `target` (a full path in `dest`); a directory's contents go into `target`.
    pub fn copy(&self, rel: &Path, dest: &OwnedFd, target: &Path, a: Attrs) -> Result<()> {
        // A named source is followed if it is a symlink; what is inside a directory is not.
        let fd = open_in(&self.fd, rel, OFlags::PATH)
            .map_err(|e| sys(&format!("open {} in {}", rel.display(), self.label), e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| sys(&format!("stat {}", rel.display()), e))?;
        let (pdir, name) = parent_of(dest, target, a)?;
        let src_parent = open_in(
            &self.fd,
            rel.parent().unwrap_or(Path::new("")),
            OFlags::RDONLY | OFlags::DIRECTORY,
        )
        .map_err(|e| sys(&format!("open {}", rel.display()), e))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            let sfd = open_in(&self.fd, rel, OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(|e| sys(&format!("open {}", rel.display()), e))?;
            return self.copy_dir(sfd, rel, &st, &pdir, &name, a);
        }
        let src_name = rel.file_name().unwrap_or(OsStr::new("."));
        if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
            let f = open_in(&self.fd, rel, OFlags::RDONLY).map_err(|e| sys(&format!("open {}", rel.display()), e))?;
            return copy_file(f, &st, &pdir, &name, a);
        }
        self.copy_node(&src_parent, src_name, rel, &pdir, &name, a)
    }

    fn copy_dir(
        &self,
        sfd: OwnedFd,
        rel: &Path,
        st: &rustix::fs::Stat,
        pdir: &OwnedFd,
        name: &OsStr,
        a: Attrs,
    ) -> Result<()> {
        let dfd = make_dir(pdir, name, st, a)?;
        for child in list(sfd.try_clone().map_err(Error::io("dup"))?, rel)? {
            let p = rel.join(&child);
            if self.skip(&p) {
                continue;
            }
            self.copy_node(&sfd, &child, &p, &dfd, &child, a)?;
        }
        set_times(&dfd, st)
    }

    fn copy_node(
        &self,
        sdir: &OwnedFd,
        sname: &OsStr,
        rel: &Path,
        ddir: &OwnedFd,
        dname: &OsStr,
        a: Attrs,
    ) -> Result<()> {
        let st = rustix::fs::statat(sdir, sname, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| sys(&format!("stat {}", rel.display()), e))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let sfd = rustix::fs::openat(
                    sdir,
                    sname,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| sys(&format!("open {}", rel.display()), e))?;
                self.copy_dir(sfd, rel, &st, ddir, dname, a)
            }
            FileType::RegularFile => {
                let f = rustix::fs::openat(
                    sdir,
                    sname,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| sys(&format!("open {}", rel.display()), e))?;
                copy_file(f, &st, ddir, dname, a)
            }
            FileType::Symlink => {
                let t = rustix::fs::readlinkat(sdir, sname, Vec::new())
                    .map_err(|e| sys(&format!("readlink {}", rel.display()), e))?;
                clear(ddir, dname, false)?;
                rustix::fs::symlinkat(t.as_c_str(), ddir, dname)
                    .map_err(|e| sys(&format!("create symlink {}", rel.display()), e))?;
                let (uid, gid) = a.owner.unwrap_or((st.st_uid, st.st_gid));
                rustix::fs::chownat(
                    ddir,
                    dname,
                    Some(rustix::process::Uid::from_raw(uid)),
                    Some(rustix::process::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| sys(&format!("chown {}", rel.display()), e))?;
                let ts = times(&st);
                rustix::fs::utimensat(ddir, dname, &ts, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| sys(&format!("set times of {}", rel.display()), e))
            }
            // Devices, fifos and sockets are not copied, as Docker does not copy them.
            _ => Ok(()),
        }
    }
}

/// Whether `..` takes the path above its start (`COPY ../secret .`).
fn escapes(p: &Path) -> bool {
    let mut depth = 0usize;
    for c in p.components() {
        match c {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::ParentDir if depth == 0 => return true,
            std::path::Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    false
}

fn list(fd: OwnedFd, what: &Path) -> Result<Vec<std::ffi::OsString>> {
    let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| sys(&format!("read {}", what.display()), e))?;
    let mut names = Vec::new();
    for ent in dir {
        let ent = ent.map_err(|e| sys(&format!("read {}", what.display()), e))?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

fn times(st: &rustix::fs::Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

fn set_times(fd: &OwnedFd, st: &rustix::fs::Stat) -> Result<()> {
    rustix::fs::futimens(fd, &times(st)).map_err(|e| sys("set times", e))
}

/// The directory `target` goes into (made if missing, owned as `a` says) and its last name.
pub fn parent_of(dest: &OwnedFd, target: &Path, a: Attrs) -> Result<(OwnedFd, std::ffi::OsString)> {
    let name = target
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("cannot copy onto {}", target.display())))?
        .to_os_string();
    let parent = target.parent().unwrap_or(Path::new("/"));
    let mut made = Vec::new();
    let fd = inroot::mkdir_all(dest, parent, &mut made)?;
    if let Some((uid, gid)) = a.owner {
        for d in made {
            let dfd = open_in(dest, &d, OFlags::RDONLY | OFlags::DIRECTORY)
                .map_err(|e| sys(&format!("open {}", d.display()), e))?;
            chown(&dfd, uid, gid)?;
        }
    }
    Ok((fd, name))
}

fn chown(fd: &OwnedFd, uid: u32, gid: u32) -> Result<()> {
    rustix::fs::fchown(
        fd,
        Some(rustix::process::Uid::from_raw(uid)),
        Some(rustix::process::Gid::from_raw(gid)),
    )
    .map_err(|e| sys("chown", e))
}

/// Make room for `name`: remove what is there unless it is a directory we may reuse.
fn clear(dir: &OwnedFd, name: &OsStr, keep_dir: bool) -> Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(_) => Ok(()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            if keep_dir {
                Ok(())
            } else {
                Err(Error::Invalid(format!(
                    "cannot replace directory {} with a file",
                    name.to_string_lossy()
                )))
            }
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(|e| sys("remove", e)),
    }
}

fn make_dir(pdir: &OwnedFd, name: &OsStr, st: &rustix::fs::Stat, a: Attrs) -> Result<OwnedFd> {
    clear(pdir, name, true)?;
    match rustix::fs::mkdirat(pdir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(sys(&format!("create {}", name.to_string_lossy()), e)),
    }
    let fd = rustix::fs::openat(
        pdir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| sys(&format!("open {}", name.to_string_lossy()), e))?;
    let (uid, gid) = a.owner.unwrap_or((st.st_uid, st.st_gid));
    chown(&fd, uid, gid)?;
    let mode = a.mode.unwrap_or(st.st_mode & 0o7777);
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| sys("chmod", e))?;
    Ok(fd)
}

fn copy_file(src: OwnedFd, st: &rustix::fs::Stat, pdir: &OwnedFd, name: &OsStr, a: Attrs) -> Result<()> {
    clear(pdir, name, false)?;
    let out = rustix::fs::openat(
        pdir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| sys(&format!("create {}", name.to_string_lossy()), e))?;
    let mut outf = std::fs::File::from(out);
    std::io::copy(&mut std::fs::File::from(src), &mut outf)
        .map_err(Error::io(format!("write {}", name.to_string_lossy())))?;
    let fd: OwnedFd = outf.into();
    let (uid, gid) = a.owner.unwrap_or((st.st_uid, st.st_gid));
    chown(&fd, uid, gid)?;
    // After the chown, which clears set-id bits.
    let mode = a.mode.unwrap_or(st.st_mode & 0o7777);
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| sys("chmod", e))?;
    set_times(&fd, st)
}

/// Write `data` as file `target` in `dest` (heredoc sources, downloads).
pub fn write_file(
    dest: &OwnedFd,
    target: &Path,
    data: &mut dyn Read,
    mode: u32,
    a: Attrs,
    mtime: Option<i64>,
) -> Result<()> {
    let (pdir, name) = parent_of(dest, target, a)?;
    clear(&pdir, &name, false)?;
    let out = rustix::fs::openat(
        &pdir,
        &name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| sys(&format!("create {}", target.display()), e))?;
    let mut f = std::fs::File::from(out);
    std::io::copy(data, &mut f).map_err(Error::io(format!("write {}", target.display())))?;
    let (uid, gid) = a.owner.unwrap_or((0, 0));
    chown(&f.as_fd().try_clone_to_owned().map_err(Error::io("dup"))?, uid, gid)?;
    rustix::fs::fchmod(&f, Mode::from_raw_mode(a.mode.unwrap_or(mode))).map_err(|e| sys("chmod", e))?;
    if let Some(t) = mtime {
        let ts = Timespec { tv_sec: t, tv_nsec: 0 };
        rustix::fs::futimens(
            &f,
            &Timestamps {
                last_access: ts,
                last_modification: ts,
            },
        )
        .map_err(|e| sys("set times", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn root(dir: &Path, ignore: Option<&str>) -> SourceRoot {
        SourceRoot {
            fd: inroot::open_root(dir).unwrap(),
            ignore: ignore.map(|t| Ignore::parse(t).unwrap()),
            label: "the build context".into(),
        }
    }

    #[test]
    fn globs_ignore_rules_hashes_and_copies() {
        let ctx = tempfile::tempdir().unwrap();
        let c = ctx.path();
        std::fs::create_dir_all(c.join("src/sub")).unwrap();
        std::fs::write(c.join("src/a.txt"), "a").unwrap();
        std::fs::write(c.join("src/b.md"), "b").unwrap();
        std::fs::write(c.join("src/sub/c.txt"), "c").unwrap();
        std::fs::write(c.join("secret.key"), "k").unwrap();
        std::os::unix::fs::symlink("a.txt", c.join("src/link")).unwrap();
        let r = root(c, Some("*.key\nsrc/*.md\n"));
        assert_eq!(r.expand("src/*.txt").unwrap(), vec![PathBuf::from("src/a.txt")]);
        assert!(r.expand("secret.key").is_err(), "ignored files are not in the context");
        assert!(r.expand("../etc/passwd").is_err());
        assert!(r.expand("nothing*").is_err());

        let mut h1 = Vec::new();
        r.hash(Path::new("src"), &mut h1).unwrap();
        assert!(!String::from_utf8_lossy(&h1).contains("b.md"));
        std::fs::write(c.join("src/sub/c.txt"), "changed").unwrap();
        let mut h2 = Vec::new();
        r.hash(Path::new("src"), &mut h2).unwrap();
        assert_ne!(h1, h2);

        let img = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(img.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", img.path().join("app")).unwrap();
        let dest = inroot::open_root(img.path()).unwrap();
        let a = Attrs {
            owner: Some((5, 6)),
            mode: None,
        };
        // "/app" is a symlink to "/etc" in the image: followed inside it, never on the host.
        r.copy(Path::new("src"), &dest, Path::new("/app/src"), a).unwrap();
        let out = img.path().join("etc/src");
        assert_eq!(std::fs::read_to_string(out.join("sub/c.txt")).unwrap(), "changed");
        assert!(!out.join("b.md").exists());
        assert_eq!(std::fs::read_link(out.join("link")).unwrap(), PathBuf::from("a.txt"));
        let md = std::fs::metadata(out.join("a.txt")).unwrap();
        assert_eq!((md.uid(), md.gid()), (5, 6));
        assert_eq!(md.mtime(), std::fs::metadata(c.join("src/a.txt")).unwrap().mtime());
    }

    #[test]
    fn a_named_symlink_is_hashed_by_what_it_points_at_and_exceptions_reach_into_ignored_dirs() {
        let ctx = tempfile::tempdir().unwrap();
        let c = ctx.path();
        std::fs::write(c.join("real.txt"), "one").unwrap();
        std::os::unix::fs::symlink("real.txt", c.join("link")).unwrap();
        let r = root(c, Some("docs\n!docs/keep.md\n"));
        let hash = || {
            let mut h = Vec::new();
            r.hash(Path::new("link"), &mut h).unwrap();
            h
        };
        let before = hash();
        std::fs::write(c.join("real.txt"), "two").unwrap();
        assert_ne!(before, hash(), "COPY link copies the file: its content is the key");

        std::fs::create_dir_all(c.join("docs")).unwrap();
        std::fs::write(c.join("docs/keep.md"), "kept").unwrap();
        std::fs::write(c.join("docs/drop.md"), "dropped").unwrap();
        let img = tempfile::tempdir().unwrap();
        let dest = inroot::open_root(img.path()).unwrap();
        let a = Attrs {
            owner: None,
            mode: None,
        };
        for rel in r.expand(".").unwrap() {
            r.copy(&rel, &dest, Path::new("/ctx"), a).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(img.path().join("ctx/docs/keep.md")).unwrap(),
            "kept"
        );
        assert!(!img.path().join("ctx/docs/drop.md").exists());
        let mut h = Vec::new();
        r.hash(Path::new("."), &mut h).unwrap();
        let text = String::from_utf8_lossy(&h);
        assert!(text.contains("kept") && !text.contains("dropped"), "{text}");
    }
}
