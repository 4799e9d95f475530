//! LockBox's OCI runtime. It speaks the OCI runtime spec (`oci-spec` types) and nothing else: the
//! engine hands it a spec and a rootfs, exactly as podman hands runc a bundle, so `lbox-runc` and
//! `lbox run` share this one code path.

pub mod capabilities;
pub mod cgroups;
pub mod channel;
pub mod console;
pub mod container;
pub mod error;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod inroot;
pub mod lsm;
pub mod mount;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod spawn;
pub mod spec;
pub mod state;
pub mod trampoline;
pub mod tty;

pub use error::{Error, Result};
