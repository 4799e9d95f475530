//! The runtime's error type: every variant names the object it failed on, so the CLI can print one
//! clear line without adding context of its own.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container \"{0}\" already exists; delete it first with: lbox-runc delete {0}")]
    AlreadyExists(String),
    #[error("invalid container id \"{0}\": use letters, digits, '_', '-', '+' and '.' only")]
    InvalidId(String),
    #[error("container \"{id}\" is {status}; {what}")]
    BadState { id: String, status: String, what: String },
    #[error("bundle {0}: {1}")]
    Bundle(PathBuf, String),
    #[error("{file}: field `{field}`: {msg}")]
    Config { file: PathBuf, field: String, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{what}: {errno}")]
    Sys { what: String, errno: nix::Error },
    #[error("cgroup {path}: {msg}")]
    Cgroup { path: String, msg: String },
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("hook {path} ({kind}): {msg}")]
    Hook { kind: String, path: String, msg: String },
    #[error("container init: {0}")]
    Init(String),
    /// An init failure as reported back by the init (already worded as "container init: ...").
    #[error("{0}")]
    Container(String),
    #[error("{0} is not supported by lbox-runc yet")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attach "what we were doing" to low-level errors.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { what: what(), source })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| Error::Sys { what: what(), errno })
    }
}

impl<T> Context<T> for std::result::Result<T, rustix::io::Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Sys {
            what: what(),
            errno: nix::Error::from_raw(e.raw_os_error()),
        })
    }
}
