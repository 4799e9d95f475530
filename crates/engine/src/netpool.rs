//! A few network namespaces made ahead of time, so that starting a container joins one instead of
//! making one. Making a network namespace (the kernel registers a loopback device and every
//! subsystem's per-namespace state) took ~0.7 ms of every `run`; it now happens in the
//! background after a container is removed or started, where nobody waits for it. The work is
//! the same, only moved: a burst of starts that empties the pool makes its namespaces as before.
//!
//! The pool lives in $LBOX_RUN/netns-pool: `ready/<name>/ns` is a bind mount that keeps a fresh
//! namespace (loopback up, nothing else) alive. A start claims one by renaming its directory to
//! `taken/` (one rename: two starts never get the same one), and lets go of the bind mount once
//! its init has joined the namespace. The refill (under the pool directory's lock, so that many
//! removals at once top it up only to its size) makes each namespace in `new/` and renames it
//! into `ready/` when it is whole.
//!
//! Only containers whose namespaces LockBox owns use it: not an external runtime's, and not a
//! namespace joined from another container.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use crate::paths::Paths;

/// How many namespaces the pool keeps (`LBOX_NETNS_POOL`, 0 turns it off).
pub const SIZE_ENV: &str = "LBOX_NETNS_POOL";
const DEFAULT_SIZE: u32 = 2;
const MAX_SIZE: u32 = 16;
/// A claimed or half-made entry older than this belongs to a process that died: no start takes
/// longer than this from its claim to its init joining the namespace.
const STALE_SECS: i64 = 60;
/// statfs(2)'s f_type for a namespace file.
const NSFS_MAGIC: i64 = 0x6e73_6673;

pub fn dir(paths: &Paths) -> PathBuf {
    paths.run.join("netns-pool")
}

/// The pool's size from the environment.
pub fn size() -> u32 {
    std::env::var(SIZE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
        .map_or(DEFAULT_SIZE, |n| n.min(MAX_SIZE))
}

/// Whether a container with config `c` uses the pool: only with the built-in runtime, and only for
/// a network namespace of its own.
pub fn wanted(c: &crate::config::ContainerConfig) -> bool {
    c.runtime.is_none() && c.network != "host" && !c.network.starts_with("container:")
}

/// A namespace taken from the pool. Dropping it removes the bind mount that kept the namespace
/// alive (a failed start); a started container [`keep`](Claimed::keep)s it until it has exited.
pub struct Claimed {
    dir: PathBuf,
}

impl Claimed {
    /// The namespace file to join.
    pub fn ns(&self) -> PathBuf {
        self.dir.join("ns")
    }

    /// Leave the bind mount in place until the container has exited (`release_for`, or the
    /// background clone of its removal). Dropping the last reference to a network namespace
    /// starts its teardown (~1 ms of a kernel worker's time); while the container runs its
    /// processes hold it anyway, and after it exits the teardown then runs where nobody waits,
    /// instead of beside the exit path. A bind mount left by a process that died goes with the
    /// stale entries; that only drops a reference the container's processes also hold.
    pub fn keep(self) {
        std::mem::forget(self);
    }
}

/// The entry name prefix of container `id`'s claims.
pub(crate) fn owner(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Let go of the namespaces container `id` claimed from the pool at `pool` (it has exited).
pub fn release_for(pool: &Path, id: &str) {
    let taken = pool.join("taken");
    let Ok(rd) = std::fs::read_dir(&taken) else { return };
    let prefix = format!("{}-", owner(id));
    for entry in rd.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            release(&entry.path());
        }
    }
}

/// [`release_for`] without allocating, for the background clone: `owner` is the id's prefix.
pub(crate) fn release_for_raw(pool: &CStr, owner: &CStr) {
    let mut rel = [0u8; crate::trash::PATH_MAX];
    let Some(taken) = crate::trash::join(&mut rel, &[pool.to_bytes(), b"/taken"]) else {
        return;
    };
    let Some(fd) = crate::trash::open_dir_raw(rustix::fs::CWD, taken) else {
        return;
    };
    let owner = owner.to_bytes();
    crate::trash::each_entry_raw(fd.as_fd(), |name, _| {
        let n = name.to_bytes();
        if n.len() > owner.len() && n.starts_with(owner) && n[owner.len()] == b'-' {
            remove_entry_raw(pool, c"taken", fd.as_fd(), name);
        }
    });
}

impl Drop for Claimed {
    fn drop(&mut self) {
        release(&self.dir);
    }
}

/// Take a ready namespace for container `id`, if the pool has one. A miss makes the pool's
/// directory, which is what asks the next background refill to fill it.
pub fn claim(paths: &Paths, id: &str) -> Option<Claimed> {
    if size() == 0 {
        return None;
    }
    let pool = dir(paths);
    let ready = match std::fs::read_dir(pool.join("ready")) {
        Ok(rd) => rd,
        Err(_) => {
            let _ = std::fs::create_dir_all(&pool);
            return None;
        }
    };
    let short = owner(id);
    for entry in ready.flatten() {
        let taken = pool
            .join("taken")
            .join(format!("{short}-{}", entry.file_name().to_string_lossy()));
        if std::fs::rename(entry.path(), &taken).is_err() {
            // Another start took it first.
            continue;
        }
        let c = Claimed { dir: taken };
        if is_netns(&c.ns()) {
            return Some(c);
        }
        // Not a namespace any more (the machine rebooted under a persistent $LBOX_RUN): the
        // drop deletes it.
    }
    None
}

// f_type's type differs between architectures.
#[allow(clippy::unnecessary_cast)]
fn is_netns(p: &Path) -> bool {
    rustix::fs::statfs(p).is_ok_and(|s| s.f_type as i64 == NSFS_MAGIC)
}

/// Unmount and delete one entry's directory.
fn release(entry: &Path) {
    let ns = entry.join("ns");
    while rustix::mount::unmount(&ns, rustix::mount::UnmountFlags::DETACH).is_ok() {}
    let _ = std::fs::remove_file(&ns);
    let _ = std::fs::remove_dir(entry);
}

/// Empty the pool and remove it (`system reset`): waits for a refill under way.
pub fn drain(paths: &Paths) {
    let pool = dir(paths);
    let Some(_lock) = locked(&pool, FlockOperation::LockExclusive) else {
        return;
    };
    for sub in ["ready", "taken", "new"] {
        if let Ok(rd) = std::fs::read_dir(pool.join(sub)) {
            for entry in rd.flatten() {
                release(&entry.path());
            }
        }
        let _ = std::fs::remove_dir(pool.join(sub));
    }
    let _ = std::fs::remove_dir(&pool);
}

/// Delete what died half-way (`system prune`): claimed or half-made entries older than a minute.
pub fn prune(paths: &Paths) {
    let pool = dir(paths);
    let Ok(c) = std::ffi::CString::new(pool.as_os_str().as_encoded_bytes()) else {
        return;
    };
    if let Some(fd) = locked(&pool, FlockOperation::NonBlockingLockExclusive) {
        reap_stale_raw(&c, fd.as_fd());
    }
}

/// The pool directory, opened and locked with `op` (no allocation: the background clone uses
/// it too); None if it does not exist or, non-blocking, another process holds it.
fn locked<P: rustix::path::Arg>(pool: P, op: FlockOperation) -> Option<rustix::fd::OwnedFd> {
    let fd = rustix::fs::open(
        pool,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    rustix::fs::flock(&fd, op).ok()?;
    Some(fd)
}

/// Top the pool up to its size: the background clone's part (see `trash`), so it makes raw system
/// calls only and allocates nothing. Skipped when another process is refilling, when the pool
/// directory does not exist (no start asked for it, or `system reset` removed it) and when the
/// size is 0 (read by the caller, before the clone).
pub(crate) fn refill_raw(pool: &CStr, size: u32) {
    let Some(dir) = locked(pool, FlockOperation::NonBlockingLockExclusive) else {
        return;
    };
    for sub in [c"ready", c"taken", c"new"] {
        match rustix::fs::mkdirat(&dir, sub, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(_) => return,
        }
    }
    reap_stale_raw(pool, dir.as_fd());
    let have = count(dir.as_fd(), c"ready");
    let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
    for i in have..size {
        let mut name = [0u8; 32];
        let Some(name) = entry_name(&mut name, pid, i) else {
            return;
        };
        if !make_one(pool, dir.as_fd(), name) {
            return;
        }
    }
}

/// `<pid>-<i>` in `buf`.
fn entry_name(buf: &mut [u8; 32], pid: u32, i: u32) -> Option<&CStr> {
    let mut len = 0;
    for (k, n) in [pid, i].into_iter().enumerate() {
        if k > 0 {
            *buf.get_mut(len)? = b'-';
            len += 1;
        }
        let mut digits = [0u8; 10];
        let mut d = 0;
        let mut v = n;
        loop {
            digits[d] = b'0' + (v % 10) as u8;
            d += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        for j in (0..d).rev() {
            *buf.get_mut(len)? = digits[j];
            len += 1;
        }
    }
    *buf.get_mut(len)? = 0;
    CStr::from_bytes_with_nul(buf.get(..=len)?).ok()
}

fn count(dir: BorrowedFd<'_>, sub: &CStr) -> u32 {
    let mut n = 0;
    if let Some(fd) = crate::trash::open_dir_raw(dir, sub) {
        crate::trash::each_entry_raw(fd.as_fd(), |_, _| n += 1);
    }
    n
}

/// Make `new/<name>/ns` a bind mount of a fresh namespace, with its loopback up, and move it to
/// `ready/<name>`. This task is left in that namespace (it does nothing with the network after).
fn make_one(pool: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> bool {
    let mut rel = [0u8; 64];
    let mut abs = [0u8; crate::trash::PATH_MAX];
    let (Some(new_dir), Some(ns_abs)) = (
        crate::trash::join(&mut rel, &[b"new/", name.to_bytes()]),
        crate::trash::join(&mut abs, &[pool.to_bytes(), b"/new/", name.to_bytes(), b"/ns"]),
    ) else {
        return false;
    };
    if rustix::fs::mkdirat(dir, new_dir, Mode::from_bits_truncate(0o700)).is_err() {
        return false;
    }
    let made = (|| -> Option<()> {
        let f = rustix::fs::open(ns_abs, OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC, Mode::RUSR).ok()?;
        drop(f);
        // Safety: this task shares no file table with anyone (no CLONE_FILES), so unsharing the
        // network namespace affects only it.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }.ok()?;
        loopback_up()?;
        rustix::mount::mount_bind(c"/proc/thread-self/ns/net", ns_abs).ok()?;
        let mut to = [0u8; 64];
        let ready = crate::trash::join(&mut to, &[b"ready/", name.to_bytes()])?;
        rustix::fs::renameat(dir, new_dir, dir, ready).ok()
    })();
    if made.is_none() {
        while rustix::mount::unmount(ns_abs, rustix::mount::UnmountFlags::DETACH).is_ok() {}
        let _ = rustix::fs::unlink(ns_abs);
        let _ = rustix::fs::unlinkat(dir, new_dir, AtFlags::REMOVEDIR);
        return false;
    }
    true
}

/// `ip link set lo up` in this task's network namespace.
fn loopback_up() -> Option<()> {
    let sock = rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None).ok()?;
    // Safety: an all-zero ifreq is valid; the name fits.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // Safety: SIOCGIFFLAGS and SIOCSIFFLAGS read and write an ifreq.
    unsafe {
        rustix::ioctl::ioctl(
            sock.as_fd(),
            rustix::ioctl::Updater::<{ libc::SIOCGIFFLAGS as rustix::ioctl::Opcode }, libc::ifreq>::new(&mut req),
        )
        .ok()?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        rustix::ioctl::ioctl(
            sock.as_fd(),
            rustix::ioctl::Updater::<{ libc::SIOCSIFFLAGS as rustix::ioctl::Opcode }, libc::ifreq>::new(&mut req),
        )
        .ok()
    }
}

/// Delete `taken/` and `new/` entries older than STALE_SECS (their makers or claimers died).
fn reap_stale_raw(pool: &CStr, dir: BorrowedFd<'_>) {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime).tv_sec;
    for sub in [c"taken", c"new"] {
        let Some(fd) = crate::trash::open_dir_raw(dir, sub) else {
            continue;
        };
        crate::trash::each_entry_raw(fd.as_fd(), |name, _| {
            let old = rustix::fs::statat(fd.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| now - st.st_ctime > STALE_SECS);
            if old {
                remove_entry_raw(pool, sub, fd.as_fd(), name);
            }
        });
    }
}

/// Unmount and delete `<pool>/<sub>/<name>/ns`, then its directory (`parent` is `<pool>/<sub>`).
fn remove_entry_raw(pool: &CStr, sub: &CStr, parent: BorrowedFd<'_>, name: &CStr) {
    let mut abs = [0u8; crate::trash::PATH_MAX];
    let parts = [pool.to_bytes(), b"/", sub.to_bytes(), b"/", name.to_bytes(), b"/ns"];
    let Some(ns) = crate::trash::join(&mut abs, &parts) else {
        return;
    };
    while rustix::mount::unmount(ns, rustix::mount::UnmountFlags::DETACH).is_ok() {}
    let _ = rustix::fs::unlink(ns);
    let _ = rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;

    fn claimed(paths: &Paths) -> usize {
        std::fs::read_dir(dir(paths).join("taken")).map_or(0, |d| d.count())
    }

    #[test]
    fn refill_claim_release_and_drain_real_namespaces() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths::new(tmp.path().join("root"), tmp.path().join("run"));
        std::fs::create_dir_all(dir(&paths)).unwrap();
        let pool = CString::new(dir(&paths).as_os_str().as_bytes()).unwrap();
        // The refill leaves the calling task in the last namespace it made: a thread of its own.
        let p = pool.clone();
        std::thread::spawn(move || refill_raw(&p, 2)).join().unwrap();
        let a = claim(&paths, "aaaaaaaaaaaa1111").expect("a namespace");
        let b = claim(&paths, "bbbbbbbbbbbb2222").expect("another one");
        assert!(claim(&paths, "cccccccccccc3333").is_none(), "only two were made");
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_ne!(ino(&a.ns()), ino(&b.ns()), "two namespaces");
        let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert_ne!(ino(&a.ns()), own, "not ours");
        a.keep();
        b.keep();
        assert_eq!(claimed(&paths), 2);
        // The background release takes only its own container's.
        release_for_raw(&pool, c"aaaaaaaaaaaa");
        assert_eq!(claimed(&paths), 1);
        release_for(&dir(&paths), "bbbbbbbbbbbb2222");
        assert_eq!(claimed(&paths), 0);
        // The refill tops up to the size, no further.
        let p = pool.clone();
        std::thread::spawn(move || {
            refill_raw(&p, 1);
            refill_raw(&p, 1);
        })
        .join()
        .unwrap();
        assert_eq!(std::fs::read_dir(dir(&paths).join("ready")).unwrap().count(), 1);
        drain(&paths);
        assert!(!dir(&paths).exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(tmp.path().to_str().unwrap()),
            "bind mounts left under {}",
            tmp.path().display()
        );
    }

    #[test]
    fn entry_names_are_pid_dash_index() {
        let mut buf = [0u8; 32];
        assert_eq!(entry_name(&mut buf, 4031, 0).map(CStr::to_bytes), Some(&b"4031-0"[..]));
        let mut buf = [0u8; 32];
        assert_eq!(
            entry_name(&mut buf, u32::MAX, 15).map(CStr::to_bytes),
            Some(&b"4294967295-15"[..])
        );
    }
}
