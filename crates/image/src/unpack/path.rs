//! Layer entry paths: cleaned, refused when they try to leave the layer, and resolved with
//! openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so no entry is ever written through a symlink,
//! whatever an earlier entry (or a racing process) put in the tree.

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// A path inside the layer: its parent (relative, possibly empty) and its last component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPath {
    pub parent: PathBuf,
    pub name: OsString,
}

impl EntryPath {
    pub fn full(&self) -> PathBuf {
        self.parent.join(&self.name)
    }
}

/// Clean a tar path: `./` and empty components dropped; `..` and absolute paths refused.
/// Ok(None) is the layer root itself.
pub fn clean(raw: &[u8]) -> Result<Option<EntryPath>, String> {
    if raw.first() == Some(&b'/') {
        return Err("absolute path: entries must be relative to the layer root".into());
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("path leaves the layer root (..)".into()),
            c => parts.push(c),
        }
    }
    let Some(last) = parts.pop() else { return Ok(None) };
    let mut parent = PathBuf::new();
    for p in parts {
        parent.push(OsStr::from_bytes(p));
    }
    Ok(Some(EntryPath {
        parent,
        name: OsString::from_vec(last.to_vec()),
    }))
}

fn flags() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

/// openat2 below `root`, never through a symlink.
pub fn open_beneath(root: &OwnedFd, rel: &Path, oflags: OFlags) -> Result<OwnedFd, Errno> {
    let p = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    loop {
        match rustix::fs::openat2(root, p, oflags | OFlags::CLOEXEC, Mode::empty(), flags()) {
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

pub fn explain(e: Errno) -> String {
    match e {
        Errno::LOOP => "path goes through a symbolic link".into(),
        Errno::XDEV => "path leaves the layer root".into(),
        Errno::NOTDIR => "a parent of the path is not a directory".into(),
        e => e.to_string(),
    }
}

/// Open the directory `rel` (O_PATH), creating missing components with mode 0755.
pub fn mkdir_all(root: &OwnedFd, rel: &Path) -> Result<OwnedFd, String> {
    match open_beneath(root, rel, OFlags::PATH | OFlags::DIRECTORY) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(explain(e)),
    }
    let mut cur = open_beneath(root, Path::new(""), OFlags::PATH | OFlags::DIRECTORY).map_err(explain)?;
    for c in rel.components() {
        let name = c.as_os_str();
        match rustix::fs::mkdirat(&cur, name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(explain(e)),
        }
        cur = open_beneath(&cur, Path::new(name), OFlags::PATH | OFlags::DIRECTORY).map_err(explain)?;
    }
    Ok(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> Option<(String, String)> {
        clean(raw.as_bytes())
            .unwrap()
            .map(|e| (e.parent.display().to_string(), e.name.to_string_lossy().into_owned()))
    }

    #[test]
    fn cleans_and_refuses() {
        assert_eq!(ok("./etc/passwd"), Some(("etc".into(), "passwd".into())));
        assert_eq!(ok("usr//bin/"), Some(("usr".into(), "bin".into())));
        assert_eq!(ok("a"), Some(("".into(), "a".into())));
        assert_eq!(ok("./"), None);
        assert!(clean(b"/etc/passwd").is_err());
        assert!(clean(b"../x").is_err());
        assert!(clean(b"a/../../x").is_err());
        assert!(clean(b"a/..").is_err());
    }

    #[test]
    fn resolution_never_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("out")).unwrap();
        std::fs::create_dir(t.path().join("in")).unwrap();
        std::os::unix::fs::symlink("in", t.path().join("rel")).unwrap();
        let root = rustix::fs::open(t.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(mkdir_all(&root, Path::new("out/x"))
            .unwrap_err()
            .contains("symbolic link"));
        assert!(mkdir_all(&root, Path::new("rel/x"))
            .unwrap_err()
            .contains("symbolic link"));
        mkdir_all(&root, Path::new("in/a/b")).unwrap();
        assert!(t.path().join("in/a/b").is_dir());
        assert!(std::fs::read_dir(outside.path()).unwrap().next().is_none());
    }
}
