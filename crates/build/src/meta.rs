//! Steps that only change the image configuration (ENV, CMD, LABEL …): applied to the
//! configuration of the stage, with Docker's rules for how each field is written.

use std::collections::BTreeMap;

use image::manifest::RunConfig;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::plan::{Command, Healthcheck, Loc};

pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The value of `key` in an `Env` list.
pub fn env_get<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

pub fn env_set(env: &mut Vec<String>, key: &str, val: &str) {
    env.retain(|e| e.split('=').next() != Some(key));
    env.push(format!("{key}={val}"));
}

/// A command as the image stores it: the shell form through the stage's shell.
pub fn argv(cmd: &Command, shell: &[String]) -> Vec<String> {
    match cmd {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// `EXPOSE 80 53/udp 8000-8001`: the keys of ExposedPorts.
pub fn exposed(ports: &[String], loc: &Loc) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in ports {
        let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
        let proto = proto.to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(Error::syntax(loc, format!("EXPOSE {p}: unknown protocol {proto:?}")));
        }
        let bad = || Error::syntax(loc, format!("EXPOSE {p}: not a port number or range"));
        let (lo, hi) = match num.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let n = num.parse::<u16>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo == 0 || hi < lo {
            return Err(bad());
        }
        for n in lo..=hi {
            out.push(format!("{n}/{proto}"));
        }
    }
    Ok(out)
}

/// A duration as the Dockerfile parser accepted it (Go's syntax, down to `ns`), in nanoseconds;
/// boxfile.toml's values may also be in the engine's flag syntax.
fn nanos(flag: &str, v: &Option<String>, loc: &Loc) -> Result<Option<u64>> {
    v.as_deref()
        .map(|s| match crate::dockerfile::go_duration_secs(s) {
            Some(secs) if secs >= 0.0 => Ok((secs * 1e9).round() as u64),
            _ => engine::parse::duration_ms(flag, s)
                .map(|ms| ms * 1_000_000)
                .map_err(|e| Error::syntax(loc, e.to_string())),
        })
        .transpose()
}

/// HEALTHCHECK as Docker stores it: Test, then durations in nanoseconds.
pub fn healthcheck(h: &Healthcheck, loc: &Loc) -> Result<Value> {
    let mut m = serde_json::Map::new();
    m.insert("Test".into(), json!(h.test));
    for (key, flag, v) in [
        ("Interval", "--interval", &h.interval),
        ("Timeout", "--timeout", &h.timeout),
        ("StartPeriod", "--start-period", &h.start_period),
    ] {
        if let Some(n) = nanos(flag, v, loc)? {
            m.insert(key.into(), json!(n));
        }
    }
    if let Some(r) = h.retries {
        m.insert("Retries".into(), json!(r));
    }
    Ok(Value::Object(m))
}

pub fn labels(cfg: &mut RunConfig, pairs: &[(String, String)]) {
    let l = cfg.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in pairs {
        l.insert(k.clone(), v.clone());
    }
}

/// WORKDIR: a relative path is taken from the current one.
pub fn workdir(cur: Option<&str>, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{}/{}", cur.unwrap_or("/").trim_end_matches('/'), dir)
    };
    let clean = crate::inroot::rel(std::path::Path::new(&joined));
    format!("/{}", clean.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc() -> Loc {
        Loc {
            file: "Dockerfile".into(),
            line: 3,
        }
    }

    #[test]
    fn config_rules() {
        assert_eq!(
            exposed(&["80".into(), "53/udp".into(), "8000-8001".into()], &loc()).unwrap(),
            ["80/tcp", "53/udp", "8000/tcp", "8001/tcp"]
        );
        let e = exposed(&["http".into()], &loc()).unwrap_err().to_string();
        assert!(e.starts_with("Dockerfile:3: EXPOSE http"), "{e}");
        assert_eq!(workdir(Some("/app"), "src/../lib"), "/app/lib");
        assert_eq!(workdir(None, "/x/"), "/x");
        let mut env = vec![DEFAULT_PATH.to_string()];
        env_set(&mut env, "A", "1");
        env_set(&mut env, "A", "2");
        assert_eq!(env_get(&env, "A"), Some("2"));
        assert_eq!(env.len(), 2);
        let sh: Vec<String> = DEFAULT_SHELL.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            argv(&Command::Shell("echo hi".into()), &sh),
            ["/bin/sh", "-c", "echo hi"]
        );
        let h = healthcheck(
            &Healthcheck {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval: Some("30s".into()),
                timeout: None,
                start_period: None,
                retries: Some(3),
            },
            &loc(),
        )
        .unwrap();
        assert_eq!(h["Interval"], json!(30_000_000_000u64));
        assert_eq!(h["Retries"], json!(3));
    }

    #[test]
    fn healthcheck_durations_down_to_nanoseconds() {
        let loc = Loc {
            file: "Dockerfile".into(),
            line: 3,
        };
        let h = Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: Some("1m30s".into()),
            timeout: Some("500us".into()),
            start_period: Some("250ns".into()),
            retries: Some(2),
        };
        let v = healthcheck(&h, &loc).unwrap();
        assert_eq!(v["Interval"], 90_000_000_000u64);
        assert_eq!(v["Timeout"], 500_000u64);
        assert_eq!(v["StartPeriod"], 250u64);
    }
}
