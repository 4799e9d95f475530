//! Where everything lives on disk (ARCHITECTURE.md, "On disk").

use std::path::{Path, PathBuf};

/// The root when LBOX_ROOT is not set.
pub const DEFAULT_ROOT: &str = "/var/lib/lbox";

#[derive(Debug, Clone)]
pub struct Paths {
    /// $LBOX_ROOT: persistent state (default /var/lib/lbox).
    pub root: PathBuf,
    /// $LBOX_RUN: what does not survive a reboot (default /run/lbox).
    pub run: PathBuf,
}

impl Paths {
    pub fn new(root: impl Into<PathBuf>, run: impl Into<PathBuf>) -> Paths {
        Paths {
            root: root.into(),
            run: run.into(),
        }
    }

    /// $LBOX_RUN, or a directory named after the root when the root is not the default one, so
    /// two engines with different roots never share runtime state.
    pub fn from_env(root: &Path) -> Paths {
        let run = match std::env::var_os("LBOX_RUN") {
            Some(r) => PathBuf::from(r),
            None if root == Path::new(DEFAULT_ROOT) => PathBuf::from("/run/lbox"),
            None => root.join("run"),
        };
        Paths::new(root, run)
    }

    pub fn db(&self) -> PathBuf {
        self.root.join("lbox.db")
    }

    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn container(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// The mount point of the container's root filesystem (the bundle's `rootfs`).
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.container(id).join("rootfs")
    }

    pub fn log(&self, id: &str) -> PathBuf {
        self.container(id).join("container.log")
    }

    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    pub fn volume(&self, name: &str) -> PathBuf {
        self.volumes().join(name).join("_data")
    }

    pub fn runtime(&self) -> PathBuf {
        self.run.join("runtime")
    }

    /// The monitor's attach socket (short ID: socket paths are limited to 107 bytes).
    pub fn attach_socket(&self, id: &str) -> PathBuf {
        self.run
            .join("attach")
            .join(format!("{}.sock", &id[..12.min(id.len())]))
    }

    /// The `--init` program that containers bind-mount (see `init_program`).
    pub fn init_program(&self) -> PathBuf {
        self.run.join("lbox-init")
    }

    /// The nftables table of this engine root: "lbox" for the default root, else one named after
    /// the root, so that engines with different roots never rewrite each other's rules.
    pub fn nft_table(&self) -> String {
        if self.root == Path::new(DEFAULT_ROOT) {
            return "lbox".into();
        }
        format!("lbox-{}", self.root_hash(5))
    }

    /// The default network's bridge: "lbox0" for the default root, else one named after the root
    /// (device names have 15 bytes).
    pub fn default_bridge(&self) -> String {
        if self.root == Path::new(DEFAULT_ROOT) {
            return "lbox0".into();
        }
        format!("lb0-{}", self.root_hash(5))
    }

    /// The first `n` bytes of the root's SHA-256, in hex.
    fn root_hash(&self, n: usize) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, self.root.as_os_str().as_encoded_bytes());
        d.as_ref()[..n].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Serialises updates of a network's members' hosts files.
    pub fn network_lock(&self, id: &str) -> PathBuf {
        self.run.join("networks").join(format!("{id}.lock"))
    }

    pub fn owner_lock(&self, id: &str) -> PathBuf {
        self.run.join("owners").join(format!("{id}.lock"))
    }
}
