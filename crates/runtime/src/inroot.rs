//! Path resolution inside a container's root with openat2(RESOLVE_IN_ROOT): `..` and absolute
//! symlinks stop at the root, and magic links (/proc/self/fd/N) are refused, so nothing the image
//! contains can point a mount or a chdir at the host. One syscall per lookup, which matters on the
//! start path (pathrs does the same resolution with several more checks per call).

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

pub struct Root {
    fd: OwnedFd,
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

fn rel(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// Open `path` below the directory `root` as a process whose root is `root` would: absolute
/// symlinks and `..` stop at `root`, magic links are refused. Retried when the kernel asks
/// (a rename raced the lookup). The one in-root lookup of the engine and the builder too.
pub fn open_in(root: &impl AsFd, path: &Path, flags: OFlags) -> std::result::Result<OwnedFd, Errno> {
    let p = rel(path);
    let p = if p.as_os_str().is_empty() { Path::new(".") } else { p };
    loop {
        match rustix::fs::openat2(root, p, flags | OFlags::CLOEXEC, Mode::empty(), resolve_flags()) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

impl Root {
    pub fn open(path: &Path) -> Result<Self> {
        let fd = rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::Init(format!("open root {}: {e}", path.display())))?;
        Ok(Root { fd })
    }

    fn openat2(&self, path: &Path, flags: OFlags) -> std::result::Result<OwnedFd, Errno> {
        open_in(&self.fd, path, flags)
    }

    /// An O_PATH handle on an existing path.
    pub fn resolve(&self, path: &Path) -> Result<OwnedFd> {
        self.openat2(path, OFlags::PATH)
            .map_err(|e| Error::Init(format!("resolve {} in the rootfs: {e}", path.display())))
    }

    /// Create every missing directory of `path` and return a handle on the last one. Dangling
    /// symlinks on the way are followed inside the root and their targets created there.
    pub fn mkdir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd> {
        self.mkdir_all_depth(path, mode, 0)
    }

    fn mkdir_all_depth(&self, path: &Path, mode: u32, depth: u32) -> Result<OwnedFd> {
        let dir = OFlags::PATH | OFlags::DIRECTORY;
        let missing = match self.openat2(path, dir) {
            Ok(fd) => return Ok(fd),
            Err(e) => e == Errno::NOENT,
        };
        let err = |e: Errno| Error::Init(format!("create directory {} in the rootfs: {e}", path.display()));
        if depth > 40 {
            return Err(err(Errno::LOOP));
        }
        // A plain path that is missing: make its parent (which usually exists), then it. Each
        // mount target of a start comes here, so the fewer lookups the better: two for a
        // missing directory in an existing one, where the walk from the root below took five.
        let plain = path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::CurDir | Component::Normal(_)));
        if let (true, true, Some(name)) = (missing, plain, path.file_name()) {
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("/"));
            let pfd = self.mkdir_all_depth(parent, mode, depth)?;
            self.mkdir_in(&pfd, parent, name, mode, depth)?;
            return self.openat2(path, dir).map_err(err);
        }
        let mut sofar = PathBuf::from("/");
        let mut cur = self.openat2(&sofar, dir).map_err(err)?;
        for c in path.components() {
            let name: &OsStr = match c {
                Component::Normal(n) => n,
                Component::ParentDir => {
                    sofar.pop();
                    cur = self.openat2(&sofar, dir).map_err(err)?;
                    continue;
                }
                _ => continue,
            };
            let parent = sofar.clone();
            sofar.push(name);
            match self.openat2(&sofar, dir) {
                Ok(fd) => cur = fd,
                Err(Errno::NOENT) => {
                    self.mkdir_in(&cur, &parent, name, mode, depth)?;
                    cur = self.openat2(&sofar, dir).map_err(err)?;
                }
                Err(e) => return Err(err(e)),
            }
        }
        Ok(cur)
    }

    /// Make the directory `name` in `dir` (the directory `dir_path` of the root). Something
    /// already there is left as it is, unless it is a dangling symlink: its target is made
    /// (inside the root), so that `name` then resolves to a directory.
    fn mkdir_in(&self, dir: &OwnedFd, dir_path: &Path, name: &OsStr, mode: u32, depth: u32) -> Result<()> {
        match rustix::fs::mkdirat(dir, name, Mode::from_bits_truncate(mode)) {
            Ok(()) => Ok(()),
            // Something is there: a dangling symlink (or a racing creator).
            Err(Errno::EXIST) => {
                if let Ok(target) = rustix::fs::readlinkat(dir, name, Vec::new()) {
                    let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                    let inside = if target.is_absolute() {
                        target
                    } else {
                        dir_path.join(target)
                    };
                    self.mkdir_all_depth(&inside, mode, depth + 1)?;
                }
                Ok(())
            }
            Err(e) => Err(Error::Init(format!(
                "create directory {} in the rootfs: {e}",
                dir_path.join(name).display()
            ))),
        }
    }

    /// Create an empty file (and its parent directories) unless something is already there.
    pub fn create_file(&self, path: &Path) -> Result<OwnedFd> {
        if let Ok(fd) = self.openat2(path, OFlags::PATH) {
            return Ok(fd);
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = path
            .file_name()
            .ok_or_else(|| Error::Init(format!("{} has no file name", path.display())))?;
        let dir = self.mkdir_all(parent, 0o755)?;
        match rustix::fs::openat(
            &dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(_) | Err(Errno::EXIST) => {}
            Err(e) => return Err(Error::Init(format!("create {} in the rootfs: {e}", path.display()))),
        }
        self.resolve(path)
    }

    /// Create a symlink at `path` (its parent must resolve inside the root); an existing entry is kept.
    pub fn symlink(&self, target: &str, path: &Path) -> Result<()> {
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = path
            .file_name()
            .ok_or_else(|| Error::Init(format!("{} has no file name", path.display())))?;
        let dir = self.mkdir_all(parent, 0o755)?;
        match rustix::fs::symlinkat(target, &dir, name) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(Error::Init(format!("symlink {} -> {target}: {e}", path.display()))),
        }
    }

    pub fn fd(&self) -> impl AsFd + '_ {
        &self.fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_cannot_leave_the_root() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("evil")).unwrap();
        std::os::unix::fs::symlink("../../../../..", t.path().join("up")).unwrap();
        let r = Root::open(t.path()).unwrap();
        r.mkdir_all(Path::new("/evil/sub"), 0o755).unwrap();
        r.mkdir_all(Path::new("/evil/sub"), 0o755).unwrap();
        r.mkdir_all(Path::new("/up/x/../y"), 0o755).unwrap();
        r.create_file(Path::new("/evil/file")).unwrap();
        assert!(
            std::fs::read_dir(outside.path()).unwrap().next().is_none(),
            "nothing written outside"
        );
        // The absolute link target was taken as a path inside the root.
        let inside = t.path().join(outside.path().strip_prefix("/").unwrap());
        assert!(inside.join("sub").is_dir() && inside.join("file").is_file());
        assert!(t.path().join("y").is_dir());
    }

    #[test]
    fn missing_directories_are_made_parents_first() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("file"), b"").unwrap();
        // A relative link to a missing directory: its target is made, inside the root.
        std::os::unix::fs::symlink("made/by/link", t.path().join("rel")).unwrap();
        let r = Root::open(t.path()).unwrap();
        r.mkdir_all(Path::new("/a/b/c"), 0o750).unwrap();
        r.mkdir_all(Path::new("a/b/d"), 0o750).unwrap();
        r.mkdir_all(Path::new("/rel/x"), 0o755).unwrap();
        for d in ["a/b/c", "a/b/d", "made/by/link/x"] {
            assert!(t.path().join(d).is_dir(), "{d}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.path().join("a/b")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o022, 0o750 & !0o022);
        // A file in the way is an error, not replaced.
        assert!(r.mkdir_all(Path::new("/file/sub"), 0o755).is_err());
        assert!(t.path().join("file").is_file());
    }

    #[test]
    fn magic_links_are_refused() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("proc")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root", t.path().join("host")).unwrap();
        let r = Root::open(t.path()).unwrap();
        // Inside the root, /proc/self/root is just a missing path, never the host's root.
        assert!(r.resolve(Path::new("/host/etc")).is_err());
    }
}
