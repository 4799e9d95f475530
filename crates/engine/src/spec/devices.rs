//! `--privileged` gives the container the host's devices, as Docker does: every character and
//! block device under /dev (not the pty and shm instances, which the container has its own of).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};

const SKIP: &[&str] = &["/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console", "/dev/ptmx"];

pub fn host_devices() -> Vec<Value> {
    let mut out = Vec::new();
    walk(Path::new("/dev"), &mut out, 0);
    out
}

fn walk(dir: &Path, out: &mut Vec<Value>, depth: usize) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let path = e.path();
        if SKIP.iter().any(|s| path == Path::new(s)) {
            continue;
        }
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = md.file_type();
        if ft.is_dir() && depth < 4 {
            walk(&path, out, depth + 1);
            continue;
        }
        let typ = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            continue;
        };
        let rdev = md.rdev();
        out.push(json!({
            "path": path,
            "type": typ,
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "fileMode": md.mode() & 0o7777,
            "uid": md.uid(),
            "gid": md.gid(),
        }));
    }
}
