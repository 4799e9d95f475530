//! Paths inside a root directory (the build context, or an image mounted for a step) opened with
//! openat2(RESOLVE_IN_ROOT): a symlink in it, absolute or full of `..`, resolves inside that root,
//! as it would for a container, so no step can read or write the host through one.

use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Error, Result};

pub fn open_root(dir: &Path) -> Result<OwnedFd> {
    rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| Error::Io {
        what: format!("open {}", dir.display()),
        source: e.into(),
    })
}

/// `p` without its root, `.` and `..` parts: what RESOLVE_IN_ROOT is given.
pub fn rel(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

pub fn open_in(root: &OwnedFd, p: &Path, flags: OFlags) -> std::result::Result<OwnedFd, Errno> {
    // `..` is taken away lexically first, as Docker cleans a path before it resolves it.
    runtime::inroot::open_in(root, &rel(p), flags)
}

/// Make directory `p` and its missing parents inside the root; `made` gets each directory
/// created (so the caller can give them an owner). Returns the directory, opened.
pub fn mkdir_all(root: &OwnedFd, p: &Path, made: &mut Vec<PathBuf>) -> Result<OwnedFd> {
    let mut cur = PathBuf::from("/");
    for c in rel(p).components() {
        cur.push(c);
        match open_in(root, &cur, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(_) => continue,
            Err(Errno::NOENT) => {}
            Err(Errno::NOTDIR) => {
                return Err(Error::Invalid(format!(
                    "{} exists in the image and is not a directory",
                    cur.display()
                )))
            }
            Err(e) => return Err(sys(&format!("open {}", cur.display()), e)),
        }
        let parent = cur.parent().unwrap_or(Path::new("/"));
        let pfd = open_in(root, parent, OFlags::PATH | OFlags::DIRECTORY)
            .map_err(|e| sys(&format!("open {}", parent.display()), e))?;
        let name = cur.file_name().unwrap_or(OsStr::new("."));
        match rustix::fs::mkdirat(&pfd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => made.push(cur.clone()),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(sys(&format!("create {}", cur.display()), e)),
        }
    }
    open_in(root, p, OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| sys(&format!("open {}", p.display()), e))
}

pub fn sys(what: &str, e: Errno) -> Error {
    Error::Io {
        what: what.to_string(),
        source: e.into(),
    }
}

/// Read a small file inside the root (/etc/passwd); None when it is missing.
pub fn read(root: &OwnedFd, p: &Path) -> Result<Option<String>> {
    match open_in(root, p, OFlags::RDONLY) {
        Ok(fd) => {
            let mut s = String::new();
            use std::io::Read;
            std::fs::File::from(fd)
                .read_to_string(&mut s)
                .map_err(Error::io(format!("read {}", p.display())))?;
            Ok(Some(s))
        }
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
        Err(e) => Err(sys(&format!("open {}", p.display()), e)),
    }
}

/// `--chown=user[:group]`: numbers as they are, names looked up in the root's /etc/passwd and
/// /etc/group. A user without a group gets its primary group (Docker's rule).
pub fn resolve_owner(root: &OwnedFd, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read(root, Path::new("/etc/passwd"))?.unwrap_or_default();
    let find_user = |u: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == u).then(|| (f[2].parse::<u32>().ok(), f[3].parse::<u32>().ok()))
        })
    };
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, find_user(user).and_then(|(_, g)| g)),
        Err(_) => match find_user(user) {
            Some((Some(u), g)) => (u, g),
            _ => {
                return Err(Error::Invalid(format!(
                    "--chown {spec}: no user {user:?} in the image's /etc/passwd"
                )))
            }
        },
    };
    let gid = match group {
        None => primary.unwrap_or(uid),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read(root, Path::new("/etc/group"))?.unwrap_or_default();
                groups
                    .lines()
                    .find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.len() >= 3 && f[0] == g).then(|| f[2].parse::<u32>().ok()).flatten()
                    })
                    .ok_or_else(|| {
                        Error::Invalid(format!("--chown {spec}: no group {g:?} in the image's /etc/group"))
                    })?
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(t.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        std::os::unix::fs::symlink("/../../../../", t.path().join("up")).unwrap();
        let root = open_root(t.path()).unwrap();
        // The symlink to "/../.." lands on the root itself, never above it.
        assert!(read(&root, Path::new("/up/etc/passwd")).unwrap().is_some());
        assert_eq!(rel(Path::new("/a/../../b/./c")), PathBuf::from("b/c"));
        assert_eq!(resolve_owner(&root, "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_owner(&root, "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_owner(&root, "7:8").unwrap(), (7, 8));
        assert!(resolve_owner(&root, "nobody").is_err());
        let mut made = Vec::new();
        mkdir_all(&root, Path::new("/up/x/y"), &mut made).unwrap();
        assert!(t.path().join("x/y").is_dir());
        assert_eq!(made, vec![PathBuf::from("/up/x"), PathBuf::from("/up/x/y")]);
    }
}
