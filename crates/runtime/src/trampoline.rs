//! The exec trampoline in a sealed memfd (see trampoline/trampoline.c).

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{MemfdFlags, SealFlags};

use crate::error::{Context, Error, Result};

static TRAMPOLINE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lbox-trampoline"));

/// A sealed, close-on-exec memfd holding the trampoline. Made by the runtime before the clone.
pub fn sealed() -> Result<OwnedFd> {
    let fd = rustix::fs::memfd_create("lbox-exec", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .ctx(|| "memfd_create for the exec trampoline".into())?;
    let mut off = 0;
    while off < TRAMPOLINE.len() {
        off += rustix::io::write(&fd, &TRAMPOLINE[off..]).ctx(|| "write the exec trampoline".into())?;
    }
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .ctx(|| "seal the exec trampoline".into())?;
    Ok(fd)
}

/// execve the program through the trampoline. Returns only on failure.
pub fn exec(tramp: &impl AsFd, program: &CString, argv: &[CString], envp: &[CString]) -> Error {
    let mut args: Vec<CString> = Vec::with_capacity(argv.len() + 2);
    args.push(c"lbox-exec".to_owned());
    args.push(program.clone());
    args.extend(argv.iter().cloned());
    match nix::unistd::execveat(tramp.as_fd(), c"", &args, envp, nix::fcntl::AtFlags::AT_EMPTY_PATH) {
        Ok(never) => match never {},
        Err(e) => Error::Init(format!("exec {}: {e}", program.to_string_lossy())),
    }
}

/// The container init for `--init` (see trampoline/init.c): a static program that runs the
/// user's command as its child, forwards signals to it, and reaps orphans.
pub fn init_program() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/lbox-init"))
}
