//! Builds the exec trampoline (trampoline/trampoline.c) and the container init
//! (trampoline/init.c) as small static executables that the runtime embeds; see those files for
//! why they exist.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=trampoline/nolibc.h");
    build("trampoline/trampoline.c", "lbox-trampoline");
    build("trampoline/init.c", "lbox-init");
}

fn build(src: &str, name: &str) {
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-static",
        "-Os",
        "-s",
        "-fno-stack-protector",
        "-fno-asynchronous-unwind-tables",
    ]);
    if arch == "x86_64" || arch == "aarch64" {
        cmd.args([
            "-DLBOX_NOLIBC",
            "-nostdlib",
            "-nostartfiles",
            "-fno-builtin",
            // Keeps the compiler from turning copy loops into calls to a memcpy that is not there.
            "-fno-tree-loop-distribute-patterns",
            "-Wl,--build-id=none",
        ]);
    }
    let status = cmd
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} to build {src}: {e}"));
    assert!(
        status.success(),
        "building {src} with {cc} failed (is libc6-dev installed?)"
    );
}
