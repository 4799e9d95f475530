//! The runc-compatible command line: the flags and output formats that podman (through conmon) and
//! containerd (through go-runc) use.

mod cli;
mod commands;
mod features;
mod log;
mod spec_template;

use std::ffi::OsString;

use clap::Parser;

pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match cli::Cli::try_parse_from(normalize(args)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let logger = log::Logger::new(cli.log.as_deref(), cli.log_format.as_deref());
    match commands::dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&format!("{e:#}"));
            // runc exits 255 when exec fails, 1 for everything else.
            if matches!(cli.command, Some(cli::Command::Exec(_))) {
                255
            } else {
                1
            }
        }
    }
}

/// Go's flag package accepts `-flag` for long flags; containerd passes `-no-subreaper`.
fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-no-subreaper") => OsString::from("--no-subreaper"),
            _ => a,
        })
        .collect()
}
