//! The engine's error type. Every variant names the object it failed on and, where there is one,
//! the command that fixes it, so the CLI prints it as one line without adding context.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("container ID prefix \"{prefix}\" is ambiguous; it matches {}: use more characters", .matches.join(", "))]
    Ambiguous { prefix: String, matches: Vec<String> },
    #[error("the container name \"{name}\" is already in use by container {id}; remove it with: lbox rm {name}, or choose another --name")]
    NameInUse { name: String, id: String },
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("volume \"{name}\" is in use by container {container}; remove the container first")]
    VolumeInUse { name: String, container: String },
    #[error("container {name} is {state}: {what}")]
    BadState { name: String, state: String, what: String },
    #[error("{0}")]
    Invalid(String),
    /// The container's program could not be started (exit 126: not executable, 127: not found).
    #[error("{msg}")]
    Exec { msg: String, code: i32 },
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    #[error(transparent)]
    Network(#[from] network::Error),
    #[error("state database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("{what}: {errno}")]
    Sys { what: String, errno: rustix::io::Errno },
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

impl<T> Context<T> for std::result::Result<T, rustix::io::Errno> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|errno| Error::Sys { what: what(), errno })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Sys {
            what: what(),
            errno: rustix::io::Errno::from_raw_os_error(e as i32),
        })
    }
}

impl Error {
    /// Docker's exit codes for the engine's own failures: 125 for the engine, 126 when the
    /// program cannot be invoked, 127 when it is not found.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            _ => 125,
        }
    }
}
