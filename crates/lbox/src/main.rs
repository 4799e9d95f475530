//! `lbox`: LockBox's one binary. Invoked as `lbox-runc` (by symlink, copy or argv[0]) or as
//! `lbox runtime …` it is a runc-compatible OCI runtime; otherwise it is the engine's CLI.

mod cli;
mod runc;

use std::ffi::OsString;
use std::path::Path;

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let code = if argv0.starts_with("lbox-runc") || argv0 == "runc" {
        runc::main(args)
    } else if args.get(1).is_some_and(|a| a == engine::monitor::SUBCOMMAND) {
        // A detached container's monitor: no CLI parsing, as little memory as possible.
        let rest: Vec<String> = args.iter().skip(2).map(|a| a.to_string_lossy().into_owned()).collect();
        engine::monitor::main(&rest)
    } else if args.get(1).is_some_and(|a| a == "runtime") {
        // Straight to the runtime, without the engine's parser: this is the start path.
        let mut rest = vec![OsString::from("lbox runtime")];
        rest.extend(args.into_iter().skip(2));
        runc::main(rest)
    } else {
        top_level(&args)
    };
    std::process::exit(code);
}

fn top_level(args: &[OsString]) -> i32 {
    cli::main(args.to_vec())
}
