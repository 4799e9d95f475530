//! The trash: a removed container's directory is moved into it in one rename (allowed with the
//! root filesystem still mounted inside), then unmounted and deleted where nobody waits for it.
//!
//! The background remover is a clone of this process that shares its memory (`CLONE_VM`, no
//! exec). Spawning a copy of lbox cost every `run --rm` ~0.75 ms (the caller waits for the exec of
//! a 15 MB binary) and ~230 page faults more. The price is that the clone may not allocate, lock
//! or touch thread-local state: the caller goes on using the heap. It makes only raw system
//! calls (rustix's linux_raw backend), on a stack and paths of its own that are never freed.
//! After the trash it also tops up the network namespace pool (`netpool`), the other work that
//! a removal or start leaves for nobody to wait on.
//! (Making the clone wait for the caller's exit, so that the address space's teardown fell to it,
//! was tried and measured slower: the waiting remover then ran during the next command's start.)

use std::ffi::{c_int, c_void, CStr, CString};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, RawDir};
use rustix::io::Errno;

use crate::rootfs;

/// How deep the background remover descends (each level holds a directory buffer on its stack).
/// A deeper tree is left in the trash for `lbox system prune`, which has no such limit.
const MAX_DEPTH: u32 = 128;
const STACK_SIZE: usize = 1 << 20;
const DIR_BUF: usize = 1024;
pub(crate) const PATH_MAX: usize = 4096;

/// Delete everything in `trash` from a background clone of this process; synchronously if the
/// clone cannot be made.
pub fn empty_in_background(trash: &Path) {
    tidy_in_background(Tidy {
        trash: Some(trash),
        ..Default::default()
    });
}

/// Work for the background clone, in this order.
#[derive(Default)]
pub struct Tidy<'a> {
    /// Remove these cgroup directories (of a container whose processes are gone or killed)...
    pub cgroups: &'a [std::path::PathBuf],
    /// ... then this runtime state directory (last: what is left of it tells prune the rest).
    pub runtime_state: Option<&'a Path>,
    /// Close these (a `--rm` container's namespaces, see `launch::Launched::namespaces`), so
    /// that their teardown runs here. The clone gets copies; the caller closes its own right
    /// after the spawn, before the clone is done with the cgroups and the state. Were the
    /// caller's the last, the teardown would only run in the caller, as it would have anyway.
    pub namespaces: &'a [std::os::fd::OwnedFd],
    /// Empty this trash.
    pub trash: Option<&'a Path>,
    /// The network namespace pool (see `netpool`): release what this container (id) claimed...
    pub netns_owner: Option<(&'a Path, &'a str)>,
    /// ... and top this pool up.
    pub netns_refill: Option<&'a Path>,
}

/// Do `t` in a background clone of this process. Without a clone, the trash is emptied and the
/// claims released here, and the pool waits for another time.
pub fn tidy_in_background(t: Tidy<'_>) {
    let size = crate::netpool::size();
    let t = Tidy {
        netns_refill: t.netns_refill.filter(|_| size > 0),
        ..t
    };
    if t.cgroups.is_empty()
        && t.namespaces.is_empty()
        && t.runtime_state.is_none()
        && t.trash.is_none()
        && t.netns_owner.is_none()
        && t.netns_refill.is_none()
    {
        return;
    }
    if spawn(&t, size).is_err() {
        for d in t.cgroups {
            remove_cgroup(d);
        }
        if let Some(s) = t.runtime_state {
            let _ = std::fs::remove_dir_all(s);
        }
        if let Some(trash) = t.trash {
            empty(trash);
        }
        if let Some((pool, id)) = t.netns_owner {
            crate::netpool::release_for(pool, id);
        }
    }
}

/// Delete everything in `trash` now (`system prune`, and the fallback).
pub fn empty(trash: &Path) {
    if let Ok(rd) = std::fs::read_dir(trash) {
        for entry in rd.flatten() {
            // Never delete through a mount: that would only fill the upper layer with whiteouts.
            if rootfs::unmount_at(&entry.path().join("rootfs")).is_err() {
                continue;
            }
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// What the clone is handed: paths that nothing frees.
struct Task {
    cgroups: Vec<CString>,
    /// The runtime state directory: its parent, and its name there.
    runtime_state: Option<(CString, CString)>,
    /// Descriptors the clone keeps open until the state is gone (sorted).
    namespaces: Vec<c_int>,
    trash: Option<CString>,
    netns_owner: Option<(CString, CString)>,
    netns_refill: Option<CString>,
    pool_size: u32,
}

fn spawn(t: &Tidy<'_>, pool_size: u32) -> std::io::Result<()> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes());
    let task = Box::new(Task {
        cgroups: t.cgroups.iter().map(|p| c(p)).collect::<Result<_, _>>()?,
        runtime_state: match t.runtime_state.and_then(|s| Some((s.parent()?, s.file_name()?))) {
            Some((parent, name)) => Some((c(parent)?, CString::new(name.as_bytes())?)),
            None => None,
        },
        namespaces: {
            let mut fds: Vec<c_int> = t.namespaces.iter().map(|f| f.as_raw_fd()).collect();
            fds.sort_unstable();
            fds
        },
        trash: t.trash.map(c).transpose()?,
        netns_owner: match t.netns_owner {
            Some((pool, id)) => Some((c(pool)?, CString::new(crate::netpool::owner(id))?)),
            None => None,
        },
        netns_refill: t.netns_refill.map(c).transpose()?,
        pool_size,
    });
    // Safety: a fresh private anonymous mapping; nothing else refers to it.
    let stack = unsafe {
        rustix::mm::mmap_anonymous(
            std::ptr::null_mut(),
            STACK_SIZE,
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
            rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::STACK | rustix::mm::MapFlags::NORESERVE,
        )
    }?;
    // Both are the clone's until it is gone: a short-lived caller never frees them (the clone
    // keeps the address space alive until it is done); a monitor, which spawns one per start,
    // frees them at its next spawn once the clone has been reaped (see `free_finished`).
    free_finished();
    let arg = Box::into_raw(task);
    // Safety: `background` only makes raw system calls on its own stack (the top of the mapping
    // above) and reads `arg`, which nothing frees. Without CLONE_VFORK the caller goes on at
    // once; SIGCHLD lets init (or a subreaper, or a monitor's reaping) reap the clone.
    let pid = unsafe {
        libc::clone(
            background,
            stack.cast::<u8>().add(STACK_SIZE).cast(),
            libc::CLONE_VM | libc::SIGCHLD,
            arg.cast(),
        )
    };
    if pid < 0 {
        let err = std::io::Error::last_os_error();
        // Safety: the clone was not made, so nothing else uses these.
        unsafe {
            drop(Box::from_raw(arg));
            let _ = rustix::mm::munmap(stack, STACK_SIZE);
        }
        return Err(err);
    }
    if let Ok(mut live) = LIVE.lock() {
        live.push(Spawned {
            pid,
            stack: stack as usize,
            task: arg as usize,
        });
    }
    Ok(())
}

/// A clone that may still run, and the stack and task it was handed (as addresses: only freed).
struct Spawned {
    pid: c_int,
    stack: usize,
    task: usize,
}

static LIVE: std::sync::Mutex<Vec<Spawned>> = std::sync::Mutex::new(Vec::new());

/// Free what clones that are gone were handed. Gone means no such process: reaped (a monitor
/// reaps every child). A zombie, or a reused pid, keeps its memory until a later call, or the
/// process's exit: never freed early.
fn free_finished() {
    let Ok(mut live) = LIVE.lock() else { return };
    live.retain(|s| {
        let pid = rustix::process::Pid::from_raw(s.pid);
        let gone = pid.is_some_and(|p| rustix::process::test_kill_process(p) == Err(Errno::SRCH));
        if gone {
            // Safety: the clone that used these no longer exists, and nothing else refers to them.
            unsafe {
                drop(Box::from_raw(s.task as *mut Task));
                let _ = rustix::mm::munmap(s.stack as *mut c_void, STACK_SIZE);
            }
        }
        !gone
    });
}

extern "C" fn background(arg: *mut c_void) -> c_int {
    // Safety: `arg` is the Task `spawn` leaked for us; only read here.
    let task = unsafe { &*arg.cast::<Task>() };
    // Nothing of the caller's: no inherited descriptor may keep a pipe open (a shell's `$(…)`
    // would wait for us) or a lock held; no signal handler of the caller's may run here; and a
    // ^C meant for the caller's process group does not stop the deletion half-way.
    // Safety: raw system calls with valid arguments (glibc's wrappers touch errno only on failure).
    unsafe {
        close_all_but(&task.namespaces);
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(all.as_mut_ptr());
        libc::sigprocmask(libc::SIG_SETMASK, all.as_ptr(), std::ptr::null_mut());
    }
    let _ = rustix::process::setpgid(None, None);
    for d in &task.cgroups {
        remove_cgroup_raw(d);
    }
    if let Some((parent, name)) = &task.runtime_state {
        if let Some(dir) = open_dir_raw(rustix::fs::CWD, parent) {
            let _ = remove_tree(dir.as_fd(), name, 0);
        }
    }
    for &fd in &task.namespaces {
        // Safety: a descriptor of this clone's own table, which nothing else here uses; rustix's
        // raw close leaves errno (the caller's, through the shared TLS) alone.
        unsafe { rustix::io::close(fd) };
    }
    if let Some(t) = &task.trash {
        empty_raw(t);
    }
    if let Some((pool, owner)) = &task.netns_owner {
        crate::netpool::release_for_raw(pool, owner);
    }
    if let Some(p) = &task.netns_refill {
        crate::netpool::refill_raw(p, task.pool_size);
    }
    0
}

/// Close every descriptor of this clone's own table but `keep` (sorted), with raw system calls.
///
/// # Safety
/// Only in the clone: it closes descriptors that the caller's Rust objects own.
unsafe fn close_all_but(keep: &[c_int]) {
    let mut from = 0u32;
    for &fd in keep {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if fd > from {
            libc::syscall(libc::SYS_close_range, from, fd - 1, 0u32);
        }
        from = fd + 1;
    }
    libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32);
}

/// How long a cgroup directory is retried while it is busy: a killed process may still be exiting.
const CGROUP_RETRY_MS: u32 = 5000;

/// Remove a cgroup directory, and the cgroups made below it, without allocating. Only
/// directories are removed (cgroupfs has no files to delete); a busy one is retried for a while.
fn remove_cgroup_raw(dir: &CStr) {
    for _ in 0..CGROUP_RETRY_MS {
        if rmdir_cgroup_once(dir, 0) {
            return;
        }
        let _ = rustix::thread::nanosleep(&rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        });
    }
}

/// One attempt at `dir`: its child cgroups first when it has some. True when it is gone, or
/// cannot be removed at all (not busy, just refused).
fn rmdir_cgroup_once(dir: &CStr, depth: u32) -> bool {
    match rustix::fs::unlinkat(rustix::fs::CWD, dir, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => return true,
        Err(Errno::BUSY) => {}
        Err(_) => return true,
    }
    if depth >= MAX_DEPTH {
        return false;
    }
    let Some(fd) = open_dir_raw(rustix::fs::CWD, dir) else {
        return false;
    };
    let mut path = [0u8; PATH_MAX];
    each_entry_raw(fd.as_fd(), |name, kind| {
        if kind != rustix::fs::FileType::Directory {
            return;
        }
        if let Some(child) = join(&mut path, &[dir.to_bytes(), b"/", name.to_bytes()]) {
            rmdir_cgroup_once(child, depth + 1);
        }
    });
    matches!(
        rustix::fs::unlinkat(rustix::fs::CWD, dir, AtFlags::REMOVEDIR),
        Ok(()) | Err(Errno::NOENT)
    )
}

/// [`remove_cgroup_raw`] for the caller itself, when no clone could be made.
fn remove_cgroup(dir: &Path) {
    if let Ok(c) = CString::new(dir.as_os_str().as_bytes()) {
        remove_cgroup_raw(&c);
    }
}

/// [`empty`] without allocating.
fn empty_raw(trash: &CStr) {
    let Some(dir) = open_dir_raw(rustix::fs::CWD, trash) else {
        return;
    };
    let mut path = [0u8; PATH_MAX];
    each_entry_raw(dir.as_fd(), |name, _| {
        let Some(rootfs) = join(&mut path, &[trash.to_bytes(), b"/", name.to_bytes(), b"/rootfs"]) else {
            return;
        };
        if unmount_raw(rootfs) {
            let _ = remove_tree(dir.as_fd(), name, 0);
        }
    });
}

/// Unmount everything at `path`; false if something stays mounted there.
fn unmount_raw(path: &CStr) -> bool {
    loop {
        match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
            Ok(()) => {}
            Err(Errno::INVAL) | Err(Errno::NOENT) => return true,
            Err(_) => return false,
        }
    }
}

/// Delete `name` in `parent`, and everything below it if it is a directory; true if it is gone.
fn remove_tree(parent: BorrowedFd<'_>, name: &CStr, depth: u32) -> bool {
    match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return true,
        // Linux's answer for a directory.
        Err(Errno::ISDIR) => {}
        Err(_) => return false,
    }
    if depth >= MAX_DEPTH {
        return false;
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::openat(parent, name, flags, Mode::empty()) else {
        return false;
    };
    loop {
        let mut all_gone = true;
        each_entry_raw(fd.as_fd(), |name, _| {
            if !remove_tree(fd.as_fd(), name, depth + 1) {
                all_gone = false;
            }
        });
        match rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => return true,
            // Entries deleted during a read may have hidden others from it: read again, but
            // only after a pass that removed all it saw (else each pass would revisit what
            // cannot go, and every level above would multiply that).
            Err(Errno::NOTEMPTY) if all_gone && rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0)).is_ok() => {}
            Err(_) => return false,
        }
    }
}

fn is_dot(name: &CStr) -> bool {
    matches!(name.to_bytes(), b"." | b"..")
}

/// Open directory `path` (relative to `at`, or absolute) to read its entries.
pub(crate) fn open_dir_raw(at: BorrowedFd<'_>, path: &CStr) -> Option<rustix::fd::OwnedFd> {
    rustix::fs::openat(
        at,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

/// Call `f` with the name and type of each entry of `dir` but . and .., without allocating.
pub(crate) fn each_entry_raw(dir: BorrowedFd<'_>, mut f: impl FnMut(&CStr, rustix::fs::FileType)) {
    let mut buf = [MaybeUninit::<u8>::uninit(); DIR_BUF];
    let mut entries = RawDir::new(dir, &mut buf);
    while let Some(Ok(e)) = entries.next() {
        if !is_dot(e.file_name()) {
            f(e.file_name(), e.file_type());
        }
    }
}

/// `parts` joined into `buf` as a NUL-terminated string; None if it does not fit or holds a NUL.
pub(crate) fn join<'a>(buf: &'a mut [u8], parts: &[&[u8]]) -> Option<&'a CStr> {
    let mut len = 0;
    for p in parts {
        let end = len + p.len();
        buf.get_mut(len..end)?.copy_from_slice(p);
        len = end;
    }
    *buf.get_mut(len)? = 0;
    CStr::from_bytes_with_nul(buf.get(..=len)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_builds_a_c_path_or_refuses() {
        let mut buf = [0u8; PATH_MAX];
        assert_eq!(
            join(&mut buf, &[b"/a", b"/", b"b"]).map(|c| c.to_bytes()),
            Some(&b"/a/b"[..])
        );
        let long = vec![b'x'; PATH_MAX];
        assert!(join(&mut buf, &[&long]).is_none());
        assert!(join(&mut buf, &[b"a\0b"]).is_none());
    }

    #[test]
    fn remove_tree_deletes_a_deep_wide_tree_without_allocating() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("victim");
        let mut d = top.clone();
        for i in 0..40 {
            d = d.join(format!("d{i}"));
            std::fs::create_dir_all(&d).unwrap();
            for j in 0..30 {
                std::fs::write(d.join(format!("f{j}")), b"x").unwrap();
            }
            std::os::unix::fs::symlink("/etc", d.join("link")).unwrap();
        }
        let parent = rustix::fs::open(tmp.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(remove_tree(parent.as_fd(), c"victim", 0));
        assert!(!top.exists());
        assert!(Path::new("/etc").exists());
    }

    #[test]
    fn the_background_remover_empties_the_trash_and_leaves_the_caller_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let trash = tmp.path().join("trash");
        for c in ["c1", "c2"] {
            let d = trash.join(c).join("upper/etc");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::create_dir_all(trash.join(c).join("rootfs")).unwrap();
            std::fs::write(d.join("hosts"), b"127.0.0.1 localhost\n").unwrap();
        }
        // The caller goes on allocating while the clone works in the same address space.
        let keep: Vec<String> = (0..1000).map(|i| format!("caller {i}")).collect();
        spawn(
            &Tidy {
                trash: Some(&trash),
                ..Default::default()
            },
            0,
        )
        .unwrap();
        let more: Vec<Vec<u8>> = (0..1000).map(|i| vec![i as u8; 64]).collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_dir(&trash).unwrap().next().is_some() {
            assert!(std::time::Instant::now() < deadline, "the trash was not emptied");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(keep[999], "caller 999");
        assert_eq!(more[999], vec![231u8; 64]);
        assert!(trash.is_dir());
    }

    #[test]
    fn what_a_reaped_clone_was_handed_is_freed_at_the_next_spawn() {
        let tmp = tempfile::tempdir().unwrap();
        let trash = tmp.path().join("trash");
        std::fs::create_dir_all(trash.join("c1/rootfs")).unwrap();
        let t = Tidy {
            trash: Some(&trash),
            ..Default::default()
        };
        spawn(&t, 0).unwrap();
        let pid = LIVE.lock().unwrap().last().unwrap().pid;
        let live = |pid| LIVE.lock().unwrap().iter().any(|s| s.pid == pid);
        // Not reaped yet: kept, even once it has exited.
        free_finished();
        assert!(live(pid));
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
        spawn(&t, 0).unwrap();
        assert!(!live(pid), "the reaped clone's stack and task are freed");
    }

    #[test]
    fn a_cgroup_and_the_cgroups_below_it_are_removed() {
        // Below our own cgroup: the pids hierarchy on v1, the unified one on v2.
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let base = own
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
                let rel = path.trim_start_matches('/');
                match ctrl {
                    "pids" if !v2 => Some(Path::new("/sys/fs/cgroup/pids").join(rel)),
                    "" if v2 => Some(Path::new("/sys/fs/cgroup").join(rel)),
                    _ => None,
                }
            })
            .unwrap();
        let top = base.join(format!("lbox-trash-test-{}", std::process::id()));
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::create_dir_all(top.join("c")).unwrap();
        remove_cgroup(&top);
        assert!(!top.exists(), "{} removed", top.display());
    }

    #[test]
    fn remove_tree_stops_at_its_depth_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = tmp.path().join("deep");
        for _ in 0..(MAX_DEPTH + 3) {
            d = d.join("d");
        }
        std::fs::create_dir_all(&d).unwrap();
        let parent = rustix::fs::open(tmp.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
        assert!(!remove_tree(parent.as_fd(), c"deep", 0));
        // What lies beyond the limit stays (for `system prune`), and so do its ancestors.
        assert!(tmp.path().join("deep").exists());
        empty(tmp.path());
        assert!(!tmp.path().join("deep").exists());
    }
}
