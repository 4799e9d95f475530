//! Builds the exec trampoline (trampoline/trampoline.c) as a small static executable that the
//! runtime embeds; see that file for why it exists.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "trampoline/trampoline.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("lbox-trampoline");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?} to build the exec trampoline: {e}"));
    assert!(
        status.success(),
        "building the exec trampoline with {cc} failed (is libc6-dev installed?)"
    );
}
