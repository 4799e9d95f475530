//! LockBox's image builder. Three front ends (`Dockerfile`, `app.lbox`, `boxfile.toml`) are
//! parsed into one [`plan::Plan`]; the plan runs step by step, each filesystem step in a real
//! container (RUN) or on an overlay mount of the previous step (COPY/ADD), each step's result kept
//! as an image keyed by the step and its parent, so an unchanged step is never run twice.

pub mod boxfile;
pub mod dockerfile;
pub mod error;
pub mod exec;
pub mod expand;
pub mod frontend;
pub mod fscopy;
pub mod ignore;
pub mod inroot;
pub mod lboxfile;
pub mod meta;
mod mounted;
pub mod plan;
mod runstep;

pub use error::{Error, Result};
