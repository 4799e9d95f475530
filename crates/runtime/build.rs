//! Builds the exec trampoline (trampoline/trampoline.c) as a small static executable that the
//! runtime embeds; see that file for why it exists.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "trampoline/trampoline.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("lbox-trampoline");
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
            "-Wl,--build-id=none",
        ]);
    }
    let status = cmd
        .arg("-o")
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} to build the exec trampoline: {e}"));
    assert!(
        status.success(),
        "building the exec trampoline with {cc} failed (is libc6-dev installed?)"
    );
}
