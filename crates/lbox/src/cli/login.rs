//! `lbox login` / `lbox logout`: credentials checked against the registry, then kept in LockBox's
//! auth file (mode 0600). The password is read from --password-stdin or a terminal prompt.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use clap::Args;
use image::auth::{self, Credentials};
use image::registry::{self, RegistryOptions};

use super::TlsArgs;

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry host[:port] (default docker.io).
    pub registry: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (visible in the process list; prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    pub registry: Option<String>,
}

fn registry_name(r: Option<&str>) -> String {
    match r {
        None => image::reference::DOCKER_HUB.to_string(),
        Some(s) => {
            let s = s
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let s = s.strip_suffix("/v1").or(s.strip_suffix("/v2")).unwrap_or(s);
            if s == "index.docker.io" || s == "registry-1.docker.io" {
                image::reference::DOCKER_HUB.to_string()
            } else {
                s.to_string()
            }
        }
    }
}

fn prompt(label: &str) -> Result<String> {
    eprint!("{label}: ");
    std::io::stderr().flush().ok();
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s)?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

pub fn registry_options(tls: &TlsArgs) -> Result<RegistryOptions> {
    let mut o = RegistryOptions::from_config()?;
    o.tls_verify = tls.tls_verify;
    if let Some(d) = &tls.cert_dir {
        o.certs_dirs = vec![d.clone()];
    }
    Ok(o)
}

pub fn login(a: LoginArgs) -> Result<i32> {
    let reg = registry_name(a.registry.as_deref());
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let username = match a.username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() => prompt("Username")?,
        None => bail!("no username given: use --username (-u) with --password-stdin"),
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut s)
            .context("read the password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        p
    } else if std::io::stdin().is_terminal() {
        rpassword_prompt()?
    } else {
        bail!("no password given: use --password-stdin");
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password must not be empty");
    }
    let creds = Credentials { username, password };
    registry::check_login(&reg, &registry_options(&a.tls)?, creds.clone())
        .with_context(|| format!("login to {reg}"))?;
    auth::store(&reg, &creds)?;
    println!("Login Succeeded");
    Ok(0)
}

/// Read a password from the terminal with echo off.
fn rpassword_prompt() -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let old = tcgetattr(&stdin).context("read terminal settings")?;
    let mut quiet = old.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("turn terminal echo off")?;
    let r = prompt("Password");
    let _ = tcsetattr(&stdin, OptionalActions::Now, &old);
    eprintln!();
    r
}

pub fn logout(a: LogoutArgs) -> Result<i32> {
    let reg = registry_name(a.registry.as_deref());
    if auth::remove(&reg)? {
        println!("Removing login credentials for {reg}");
        Ok(0)
    } else {
        bail!("not logged in to {reg}");
    }
}
