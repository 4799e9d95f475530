//! `lbox`: LockBox's one binary. Invoked as `lbox-runc` (by symlink, copy or argv[0]) or as
//! `lbox runtime …` it is a runc-compatible OCI runtime; otherwise it is the engine's CLI.

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
    } else if args.get(1).is_some_and(|a| a == "runtime") {
        let mut rest = vec![OsString::from("lbox runtime")];
        rest.extend(args.into_iter().skip(2));
        runc::main(rest)
    } else {
        top_level(&args)
    };
    std::process::exit(code);
}

fn top_level(args: &[OsString]) -> i32 {
    let sub = args.get(1).map(|a| a.to_string_lossy().into_owned());
    match sub.as_deref() {
        Some("--version") | Some("-v") | Some("version") => {
            println!("lbox version {}", env!("CARGO_PKG_VERSION"));
            0
        }
        None | Some("--help") | Some("-h") | Some("help") => {
            println!(
                "LockBox {}: a daemonless container engine\n\n\
                 Usage: lbox <COMMAND>\n\n\
                 Commands:\n  runtime   the runc-compatible OCI runtime (also reachable as lbox-runc)\n  version   print the version\n\n\
                 See `lbox runtime --help` for the runtime's commands.",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Some(other) => {
            eprintln!("lbox: unknown command {other:?}; see: lbox --help");
            125
        }
    }
}
