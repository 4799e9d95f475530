//! LockBox's image store. It knows nothing of containers: it keeps blobs by digest, talks to
//! registries, unpacks each layer once into a directory keyed by its chain ID, and hands out overlay
//! mounts built from those directories.

pub mod archive;
pub mod auth;
pub mod commit;
pub mod compress;
pub mod digest;
pub mod error;
pub mod import;
pub mod manifest;
pub mod overlay;
pub mod reference;
pub mod registry;
pub mod sqlite;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use error::{Error, Result};
pub use reference::Reference;
pub use store::Store;
