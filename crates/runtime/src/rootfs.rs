//! The container's filesystem, built by its init before and after pivot_root.
//!
//! Every mount destination is resolved inside the rootfs with openat2(RESOLVE_IN_ROOT) (see `inroot`) and
//! mounted on the resulting `/proc/self/fd/N`, so a symlink in the image can never point a mount at
//! the host (runc's CVE-2021-30465 class).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::inroot::Root;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::cgroups::CgroupPaths;
use crate::error::{Context, Error, Result};
use crate::mount::{self as mopts, Options};

fn fd_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn do_mount(
    src: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &str,
) -> Result<()> {
    mount(src, target, fstype, flags, data).ctx(|| what.to_string())
}

pub struct Rootfs<'a> {
    pub path: &'a Path,
    root: Root,
    spec: &'a Spec,
    userns: bool,
    new_cgroupns: bool,
    cgroup: &'a CgroupPaths,
    /// Called before the first cgroup mount: the init may still be on its way into its cgroup
    /// (the runtime makes v1 cgroups while the init mounts the rest).
    enter_cgroup: &'a dyn Fn() -> Result<()>,
}

impl<'a> Rootfs<'a> {
    /// Make the host's mounts invisible to changes we make, and turn the rootfs into a mount point
    /// (pivot_root needs one).
    pub fn open(
        spec: &'a Spec,
        path: &'a Path,
        userns: bool,
        new_cgroupns: bool,
        cgroup: &'a CgroupPaths,
        enter_cgroup: &'a dyn Fn() -> Result<()>,
    ) -> Result<Self> {
        do_mount(
            None,
            "/",
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None,
            "make / rslave",
        )?;
        let p = path
            .to_str()
            .ok_or_else(|| Error::Init(format!("rootfs path {} is not UTF-8", path.display())))?;
        do_mount(
            Some(p),
            p,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            &format!("bind rootfs {p}"),
        )?;
        let root = Root::open(path)?;
        Ok(Rootfs {
            path,
            root,
            spec,
            userns,
            new_cgroupns,
            cgroup,
            enter_cgroup,
        })
    }

    /// Resolve (creating if needed) a destination inside the rootfs; a file when `file` is set.
    fn target(&self, dest: &Path, file: bool) -> Result<OwnedFd> {
        if file {
            self.root.create_file(dest)
        } else {
            self.root.mkdir_all(dest, 0o755)
        }
    }

    pub fn mount_all(&self) -> Result<()> {
        let mounts = self.spec.mounts().as_deref().unwrap_or(&[]);
        // cgroup mounts wait for the runtime to make the cgroup: they go last unless a later
        // mount lands below one or above one (`-v /sys:/sys` must still cover it).
        let is_cgroup = |m: &Mount| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"));
        let deferred = |i: usize| {
            let dest = mounts[i].destination();
            is_cgroup(&mounts[i])
                && !mounts[i + 1..].iter().any(|later| {
                    let l = later.destination();
                    l.starts_with(dest) || dest.starts_with(l)
                })
        };
        for (i, m) in mounts.iter().enumerate() {
            if !deferred(i) {
                self.mount_one(m)?;
            }
        }
        for (i, m) in mounts.iter().enumerate() {
            if deferred(i) {
                self.mount_one(m)?;
            }
        }
        Ok(())
    }

    fn mount_one(&self, m: &Mount) -> Result<()> {
        let opts = mopts::parse(m.options().as_deref().unwrap_or(&[]));
        let dest = m.destination();
        if let Some(u) = opts.unsupported.first() {
            return Err(Error::Unsupported(format!(
                "mount option {u:?} (mount at {})",
                dest.display()
            )));
        }
        let fstype = m.typ().as_deref().unwrap_or("");
        let source = m.source().as_ref().map(|s| s.to_string_lossy().into_owned());
        if fstype == "cgroup" || fstype == "cgroup2" {
            return self.mount_cgroup(dest, &opts);
        }
        // Whether the target is a file (a file bind mount) rather than a directory.
        let mut is_file = false;
        if opts.is_bind() {
            let src = source
                .clone()
                .ok_or_else(|| Error::Init(format!("bind mount at {} has no source", dest.display())))?;
            is_file = std::fs::metadata(&src)
                .map(|md| !md.is_dir())
                .map_err(|e| Error::Init(format!("bind mount source {src}: {e}")))?;
            let t = self.target(dest, is_file)?;
            let tp = fd_path(&t);
            do_mount(
                Some(&src),
                &tp,
                None,
                opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
                None,
                &format!("bind {src} on {}", dest.display()),
            )?;
            // Bind ignores the other flags: apply them with a remount of the new mount.
            let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
            if !extra.is_empty() {
                // Re-resolve: the fd still points at the covered directory, not the new mount.
                let t2 = self.target(dest, is_file)?;
                let locked = locked_flags(&t2);
                do_mount(
                    None,
                    &fd_path(&t2),
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked,
                    None,
                    &format!("remount {} with its options", dest.display()),
                )?;
            }
        } else {
            let t = self.target(dest, false)?;
            let tp = fd_path(&t);
            let data = opts.data_string();
            let res = mount(
                source.as_deref().or(Some(fstype)),
                tp.as_str(),
                Some(fstype),
                opts.flags,
                data.as_deref(),
            );
            match res {
                Ok(()) => {}
                // sysfs and mqueue belong to the net/ipc namespace: when we may not mount a new one
                // (user namespace without its own netns), show the host's read-only instead, as runc does.
                Err(nix::Error::EPERM) if (fstype == "sysfs" || fstype == "mqueue") && self.userns => {
                    let host = if fstype == "sysfs" { "/sys" } else { "/dev/mqueue" };
                    do_mount(
                        Some(host),
                        &tp,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None,
                        &format!("bind {host} on {}", dest.display()),
                    )?;
                    let t2 = self.target(dest, false)?;
                    let _ = mount(
                        None::<&str>,
                        fd_path(&t2).as_str(),
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(&t2),
                        None::<&str>,
                    );
                }
                Err(e) => {
                    return Err(Error::Init(format!(
                        "mount {fstype} on {} (options {:?}): {e}",
                        dest.display(),
                        m.options().as_deref().unwrap_or(&[])
                    )))
                }
            }
        }
        if !opts.propagation.is_empty() {
            let t = self.target(dest, is_file)?;
            for p in &opts.propagation {
                do_mount(
                    None,
                    &fd_path(&t),
                    None,
                    *p,
                    None,
                    &format!("set propagation of {}", dest.display()),
                )?;
            }
        }
        Ok(())
    }

    /// `/sys/fs/cgroup`: the container's own cgroup directories, never the host's whole tree.
    fn mount_cgroup(&self, dest: &Path, opts: &Options) -> Result<()> {
        // Both a cgroup namespace's mount and a bind of the container's directory need the
        // cgroup made and joined.
        (self.enter_cgroup)()?;
        let flags = opts.flags - (MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC);
        if let Some(dir) = &self.cgroup.unified {
            let t = self.target(dest, false)?;
            if self.new_cgroupns {
                do_mount(
                    Some("cgroup2"),
                    &fd_path(&t),
                    Some("cgroup2"),
                    flags | (opts.flags & MsFlags::MS_RDONLY),
                    None,
                    "mount cgroup2",
                )?;
            } else {
                self.bind_cgroup_dir(dir, dest, opts.flags.contains(MsFlags::MS_RDONLY), flags)?;
            }
            return Ok(());
        }
        let t = self.target(dest, false)?;
        do_mount(
            Some("tmpfs"),
            &fd_path(&t),
            Some("tmpfs"),
            flags,
            Some("mode=755"),
            "mount tmpfs for cgroups",
        )?;
        for (controllers, dir) in self.cgroup.v1_groups() {
            let name = controllers.join(",");
            let sub = dest.join(&name);
            let st = self.target(&sub, false)?;
            if self.new_cgroupns {
                do_mount(
                    Some("cgroup"),
                    &fd_path(&st),
                    Some("cgroup"),
                    flags | (opts.flags & MsFlags::MS_RDONLY),
                    Some(&name),
                    &format!("mount cgroup {name}"),
                )?;
            } else {
                self.bind_cgroup_dir(dir, &sub, opts.flags.contains(MsFlags::MS_RDONLY), flags)?;
            }
            if controllers.len() > 1 {
                for c in &controllers {
                    let link = dest.join(c);
                    let _ = self.root.symlink(&name, &link);
                }
            }
        }
        if opts.flags.contains(MsFlags::MS_RDONLY) {
            let t2 = self.target(dest, false)?;
            do_mount(
                None,
                &fd_path(&t2),
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags,
                Some("mode=755"),
                "remount cgroup tmpfs ro",
            )?;
        }
        Ok(())
    }

    /// Show the container's own cgroup directory at `dest` (no cgroup namespace: the host's path).
    fn bind_cgroup_dir(&self, dir: &Path, dest: &Path, readonly: bool, flags: MsFlags) -> Result<()> {
        let t = self.target(dest, false)?;
        let d = dir.to_string_lossy();
        let what = format!("bind cgroup {d} on {}", dest.display());
        do_mount(
            Some(&d),
            &fd_path(&t),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            &what,
        )?;
        if readonly {
            let t2 = self.target(dest, false)?;
            let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | flags;
            do_mount(
                None,
                &fd_path(&t2),
                None,
                ro,
                None,
                &format!("remount {} read-only", dest.display()),
            )?;
        }
        Ok(())
    }

    /// Whether /dev is the host's (bind mounted): then we must not create nodes in it.
    fn dev_is_bind(&self) -> bool {
        self.spec.mounts().iter().flatten().any(|m| {
            m.destination() == Path::new("/dev") && mopts::parse(m.options().as_deref().unwrap_or(&[])).is_bind()
        })
    }

    pub fn create_devices(&self) -> Result<()> {
        if self.dev_is_bind() {
            return Ok(());
        }
        let spec_devs = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.devices().clone())
            .unwrap_or_default();
        // /dev itself is looked up once; and with no umask, mknod gives each node its exact
        // mode (no chmod afterwards, which glibc does with three system calls through /proc).
        let dev = self.root.mkdir_all(Path::new("/dev"), 0o755)?;
        let old_umask = nix::sys::stat::umask(Mode::empty());
        let made = default_devices()
            .iter()
            .chain(spec_devs.iter())
            .try_for_each(|d| self.create_device(d, &dev));
        nix::sys::stat::umask(old_umask);
        made?;
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            let _ = rustix::fs::symlinkat(target, &dev, name);
        }
        if Path::new("/proc/kcore").exists() {
            let _ = rustix::fs::symlinkat("/proc/kcore", &dev, "core");
        }
        let has_devpts = self
            .spec
            .mounts()
            .iter()
            .flatten()
            .any(|m| m.destination() == Path::new("/dev/pts"));
        if has_devpts {
            let _ = rustix::fs::unlinkat(&dev, "ptmx", rustix::fs::AtFlags::empty());
            match rustix::fs::symlinkat("pts/ptmx", &dev, "ptmx") {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(Error::Init(format!("symlink /dev/ptmx -> pts/ptmx: {e}"))),
            }
        }
        Ok(())
    }

    /// Make the device node `d`; `dev` is the container's /dev (most nodes are made there).
    /// Called with a umask of 0.
    fn create_device(&self, d: &LinuxDevice, dev: &OwnedFd) -> Result<()> {
        let path = d.path();
        if !path.is_absolute() || !path.starts_with("/dev") {
            return Err(Error::Init(format!(
                "device {}: path must be absolute and under /dev",
                path.display()
            )));
        }
        let parent = path.parent().unwrap_or(Path::new("/dev"));
        let name = path
            .file_name()
            .ok_or_else(|| Error::Init(format!("device {}: no file name", path.display())))?;
        let sub;
        let dirfd = if parent == Path::new("/dev") {
            dev.as_fd()
        } else {
            sub = self.root.mkdir_all(parent, 0o755)?;
            sub.as_fd()
        };
        let _ = nix::unistd::unlinkat(dirfd, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        if self.userns {
            // mknod is not allowed in a user namespace: bind the host's node onto an empty file.
            let f = nix::fcntl::openat(
                dirfd,
                name,
                nix::fcntl::OFlag::O_CREAT | nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .ctx(|| format!("create {}", path.display()))?;
            let host = path.to_string_lossy();
            return do_mount(
                Some(&host),
                &fd_path(&f),
                None,
                MsFlags::MS_BIND,
                None,
                &format!("bind device {host}"),
            );
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::Init(format!(
                    "device {}: type \"a\" cannot be created",
                    path.display()
                )))
            }
        };
        let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
        let devno = nix::sys::stat::makedev(d.major() as u64, d.minor() as u64);
        nix::sys::stat::mknodat(dirfd, name, kind, mode, devno).ctx(|| format!("mknod {}", path.display()))?;
        nix::unistd::fchownat(
            dirfd,
            name,
            d.uid().map(nix::unistd::Uid::from_raw),
            d.gid().map(nix::unistd::Gid::from_raw),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ctx(|| format!("chown {}", path.display()))?;
        Ok(())
    }

    /// Bind the terminal's slave onto /dev/console (it must exist for getty-like programs).
    pub fn bind_console(&self, slave: &str) -> Result<()> {
        let t = self.target(Path::new("/dev/console"), true)?;
        do_mount(
            Some(slave),
            &fd_path(&t),
            None,
            MsFlags::MS_BIND,
            None,
            "bind the terminal on /dev/console",
        )
    }
}

/// Flags that a bind remount inside a user namespace must keep (the kernel locks them).
fn locked_flags(fd: &impl AsFd) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::fstatvfs(fd) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (a, b) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(a) {
            out |= b;
        }
    }
    // Read-only only stays if the caller asked; the others are locked in a user namespace.
    out - MsFlags::MS_RDONLY
}

fn default_devices() -> Vec<LinuxDevice> {
    [
        ("/dev/null", 1, 3),
        ("/dev/zero", 1, 5),
        ("/dev/full", 1, 7),
        ("/dev/random", 1, 8),
        ("/dev/urandom", 1, 9),
        ("/dev/tty", 5, 0),
    ]
    .iter()
    .map(|(p, ma, mi)| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from(p));
        d.set_typ(LinuxDeviceType::C);
        d.set_major(*ma);
        d.set_minor(*mi);
        d.set_file_mode(Some(0o666));
        d.set_uid(Some(0));
        d.set_gid(Some(0));
        d
    })
    .collect()
}

/// Switch the root: pivot_root, or MS_MOVE + chroot with --no-pivot.
pub fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).ctx(|| format!("chdir to rootfs {}", rootfs.display()))?;
    if no_pivot {
        do_mount(Some("."), "/", None, MsFlags::MS_MOVE, None, "move rootfs to /")?;
        nix::unistd::chroot(".").ctx(|| "chroot to rootfs".into())?;
    } else {
        // pivot_root(".", ".") stacks the old root under the new one; unmount it right away.
        nix::unistd::pivot_root(".", ".").ctx(|| "pivot_root".into())?;
        do_mount(
            None,
            ".",
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None,
            "make old root rslave",
        )?;
        umount2(".", MntFlags::MNT_DETACH).ctx(|| "unmount the old root".into())?;
    }
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// After the switch: masked and read-only paths, a read-only root, the root's propagation.
pub fn finalize(spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    for p in linux.and_then(|l| l.readonly_paths().as_ref()).into_iter().flatten() {
        readonly_path(p)?;
    }
    for p in linux.and_then(|l| l.masked_paths().as_ref()).into_iter().flatten() {
        mask_path(p)?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        let root = nix::fcntl::open(
            "/",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open /".into())?;
        // In a user namespace the kernel locks nosuid/nodev/noexec: a remount must keep them.
        let locked = locked_flags(&root);
        do_mount(
            None,
            "/",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked,
            None,
            "remount / read-only",
        )?;
    }
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .filter(|p| !p.is_empty())
    {
        if let Some(f) = mopts::propagation_flag(p) {
            do_mount(None, "/", None, f, None, &format!("set rootfs propagation {p}"))?;
        }
    }
    Ok(())
}

fn readonly_path(p: &str) -> Result<()> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Err(nix::Error::ENOENT) => return Ok(()),
        r => r.ctx(|| format!("bind read-only path {p}"))?,
    }
    let fd = nix::fcntl::open(
        p,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {p}"))?;
    let locked = locked_flags(&fd);
    do_mount(
        None,
        p,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC | locked,
        None,
        &format!("remount {p} read-only"),
    )
}

fn mask_path(p: &str) -> Result<()> {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if md.is_dir() {
        do_mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
            &format!("mask {p}"),
        )
    } else {
        match mount(Some("/dev/null"), p, None::<&str>, MsFlags::MS_BIND, None::<&str>) {
            Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(Error::Init(format!("mask {p}: {e}"))),
        }
    }
}

/// Set the spec's sysctls through the container's /proc/sys.
pub fn sysctls(spec: &Spec) -> Result<()> {
    for (k, v) in spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
    {
        if k.contains("..") || k.starts_with('/') {
            return Err(Error::Init(format!("sysctl {k:?}: bad name")));
        }
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).ctx(|| format!("set sysctl {k}={v}"))?;
    }
    Ok(())
}
