use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid reference {0:?}: {1}")]
    Reference(String, String),
    #[error("invalid digest {0:?}")]
    Digest(String),
    #[error("image {0:?} not found locally; pull it with: lbox pull {0}")]
    ImageNotFound(String),
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch { what: String, expected: u64, actual: u64 },
    #[error("layer {layer}: {}{reason}", entry_prefix(.entry))]
    Layer {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("{path}: {source}")]
    Path {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("authentication to {0} failed: {1}")]
    Auth(String, String),
    #[error("image store database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{0}")]
    Invalid(String),
    /// A hard link points into a lower layer that is still being unpacked (layers unpack in
    /// parallel); the layer must be unpacked again once the lower ones are in place.
    #[error("layer {0}: a hard link points into a lower layer that is not unpacked yet")]
    LowerLayersPending(String),
    #[error("{0}")]
    Conflict(String),
}

fn entry_prefix(entry: &str) -> String {
    if entry.is_empty() {
        String::new()
    } else {
        format!("entry {entry:?}: ")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let c = context.into();
        move |e| Error::Io(c, e)
    }

    pub fn path(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let p = path.into();
        move |e| Error::Path { path: p, source: e }
    }
}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Error::Io("system call".into(), e.into())
    }
}
