//! The `--init` program on the host side: the runtime's static init (runtime::trampoline), kept
//! as one file in the run directory that `--init` containers bind-mount read-only at /dev/init,
//! as Docker mounts its docker-init. A bind mount rather than the runtime's own memfd so that an
//! external `--runtime` (runc) runs the same init.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use crate::error::{Context, Result};
use crate::paths::Paths;

/// Where the init appears inside the container.
pub const TARGET: &str = "/dev/init";

/// The init program's path, written (or rewritten, when another lbox version left a different
/// one) on first use.
pub fn ensure(paths: &Paths) -> Result<PathBuf> {
    let bytes = runtime::trampoline::init_program();
    let path = paths.init_program();
    if std::fs::read(&path).is_ok_and(|old| old == bytes) {
        return Ok(path);
    }
    let dir = path.with_file_name("");
    std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
    // A fresh name per writer, then rename: a container starting meanwhile sees the old file or
    // the new one, never half of one.
    let tmp = dir.join(format!(".lbox-init.{}", std::process::id()));
    let written =
        write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path).ctx(|| format!("install {}", path.display())));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| path)
}

fn write(tmp: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(tmp)
        .ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes).ctx(|| format!("write {}", tmp.display()))?;
    // The mode given to open is filtered by the umask.
    f.set_permissions(std::fs::Permissions::from_mode(0o755))
        .ctx(|| format!("chmod {}", tmp.display()))?;
    Ok(())
}
