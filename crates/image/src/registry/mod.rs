//! Talking to registries (OCI distribution spec, Docker Registry HTTP API v2): pull and push.

mod challenge;
mod client;
mod pull;
mod push;
pub mod tls;

pub use client::{Client, Payload};
pub use pull::{pull, PullOptions};
pub use push::push;
pub use tls::RegistryOptions;

use crate::auth::Credentials;
use crate::digest::Digest;
use crate::error::Result;
use crate::reference::Reference;

/// What a pull or push reports as it goes; the CLI draws bars or prints lines from it.
pub trait Progress: Sync {
    fn started(&self, _blob: &Digest, _size: u64) {}
    fn advanced(&self, _blob: &Digest, _bytes: u64) {}
    /// `status` is Docker's word for it: "Pull complete", "Already exists", "Pushed", "Mounted from …".
    fn finished(&self, _blob: &Digest, _status: &str) {}
    fn message(&self, _msg: &str) {}
}

pub struct Quiet;
impl Progress for Quiet {}

/// A client for the registry `r` lives in, with the stored credentials (unless `creds` is given).
pub fn client_for(r: &Reference, opts: &RegistryOptions, creds: Option<Credentials>) -> Result<Client> {
    let creds = match creds {
        Some(c) => Some(c),
        None => crate::auth::lookup(&r.registry)?,
    };
    Client::new(&r.registry, r.api_host(), opts, creds)
}

/// Check credentials against a registry (`lbox login`): GET /v2/ must succeed with them.
pub fn check_login(registry: &str, opts: &RegistryOptions, creds: Credentials) -> Result<()> {
    let r: Reference = format!("{registry}/x").parse()?;
    let c = Client::new(&r.registry, r.api_host(), opts, Some(creds))?;
    let resp = c.send("GET", "/v2/", "", &[], &Payload::Empty)?;
    let status = resp.status().as_u16();
    if status == 200 {
        return Ok(());
    }
    Err(match status {
        401 | 403 => crate::Error::Auth(registry.to_string(), "wrong username or password".into()),
        _ => c.error("GET /v2/", resp),
    })
}
