//! Parsing of `run`/`create` flag values: sizes, CPUs, durations, volumes, --mount, --tmpfs,
//! env files. Every error names the flag and the value, and says what is accepted.

use std::path::Path;

use crate::config::{MountKind, MountSpec};
use crate::error::{Error, Result};

/// `--label KEY=VALUE` flags (a bare KEY has an empty value) into `into`.
pub fn labels(flags: &[String], into: &mut std::collections::BTreeMap<String, String>) -> Result<()> {
    for l in flags {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(Error::Invalid(format!("invalid --label {l:?}: use KEY=VALUE")));
        }
        into.insert(k.into(), v.into());
    }
    Ok(())
}

/// Docker's sizes: a number with an optional unit b, k, m, g (also kb/mb/gb, any case).
pub fn size(flag: &str, s: &str) -> Result<i64> {
    let bad = || {
        Error::Invalid(format!(
            "invalid {flag} {s:?}: use a number with an optional unit b, k, m or g (for example 512m)"
        ))
    };
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || v < 1.0 || v > i64::MAX as f64 {
        return Err(bad());
    }
    Ok(v as i64)
}

/// --cpus 1.5 -> 1_500_000_000 nano-CPUs.
pub fn cpus(s: &str) -> Result<i64> {
    let n: f64 = s
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("invalid --cpus {s:?}: use a number of CPUs such as 0.5 or 2")))?;
    let online = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    if n <= 0.0 || !n.is_finite() {
        return Err(Error::Invalid(format!("invalid --cpus {s:?}: must be more than 0")));
    }
    if n > online {
        return Err(Error::Invalid(format!(
            "invalid --cpus {s:?}: this machine has only {online} CPUs"
        )));
    }
    Ok((n * 1e9) as i64)
}

/// Go-style durations: 30s, 1m30s, 500ms, 2h; a bare number is seconds.
pub fn duration_ms(flag: &str, s: &str) -> Result<u64> {
    let bad = || {
        Error::Invalid(format!(
            "invalid {flag} {s:?}: use a duration such as 30s, 1m30s or 500ms"
        ))
    };
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n * 1000);
    }
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let n: f64 = rest[..end].parse().map_err(|_| bad())?;
        rest = &rest[end..];
        let uend = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let mult = match &rest[..uend] {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "us" | "µs" => 0.001,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[uend..];
    }
    Ok(total as u64)
}

fn abs_target(flag: &str, spec: &str, t: &str) -> Result<String> {
    if !t.starts_with('/') {
        return Err(Error::Invalid(format!(
            "invalid {flag} {spec:?}: the container path {t:?} must be absolute"
        )));
    }
    if t == "/" {
        return Err(Error::Invalid(format!("invalid {flag} {spec:?}: cannot mount over /")));
    }
    Ok(t.to_string())
}

fn is_volume_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphanumeric()) && cs.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// `volume create NAME`: Docker's rule for volume names.
pub fn check_volume_name(name: &str) -> Result<()> {
    if name.len() >= 2 && is_volume_name(name) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, at least 2 characters"
        )))
    }
}

fn check_host_path(flag: &str, spec: &str, p: &str) -> Result<()> {
    if !Path::new(p).exists() {
        return Err(Error::Invalid(format!(
            "invalid {flag} {spec:?}: host path {p} does not exist; create it first"
        )));
    }
    Ok(())
}

/// -v HOST:CTR[:opts], -v NAME:CTR[:opts], -v /CTR (anonymous volume).
pub fn volume(spec: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => {
            return Err(Error::Invalid(format!(
                "invalid -v {spec:?}: use HOST-PATH:CONTAINER-PATH[:ro], NAME:CONTAINER-PATH[:ro] or CONTAINER-PATH"
            )))
        }
    };
    let target = abs_target("-v", spec, dst)?;
    let mut readonly = false;
    let mut options = Vec::new();
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "z" | "Z" | "nocopy" => {}
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => options.push(o.to_string()),
            _ => {
                return Err(Error::Invalid(format!(
                    "invalid -v {spec:?}: unknown option {o:?} (use ro, rw or a propagation mode)"
                )))
            }
        }
    }
    let (kind, source, anonymous) = if src.is_empty() {
        (MountKind::Volume, String::new(), true)
    } else if src.starts_with('/') {
        check_host_path("-v", spec, src)?;
        (MountKind::Bind, src.to_string(), false)
    } else if is_volume_name(src) {
        (MountKind::Volume, src.to_string(), false)
    } else {
        return Err(Error::Invalid(format!(
            "invalid -v {spec:?}: {src:?} is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
        )));
    };
    Ok(MountSpec {
        kind,
        source,
        target,
        readonly,
        anonymous,
        options,
    })
}

/// --mount type=bind|volume|tmpfs,source=…,target=…,readonly
pub fn mount(spec: &str) -> Result<MountSpec> {
    let bad = |m: &str| Error::Invalid(format!("invalid --mount {spec:?}: {m}"));
    let (mut kind, mut source, mut target, mut readonly, mut options) =
        (MountKind::Volume, String::new(), String::new(), false, Vec::new());
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => {
                kind = match v {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    _ => return Err(bad("type must be bind, volume or tmpfs")),
                }
            }
            "source" | "src" => source = v.to_string(),
            "target" | "destination" | "dst" => target = v.to_string(),
            "readonly" | "ro" => readonly = matches!(v, "" | "true" | "1"),
            "bind-propagation" => options.push(v.to_string()),
            "tmpfs-size" => options.push(format!("size={}", size("--mount tmpfs-size", v)?)),
            "tmpfs-mode" => options.push(format!("mode={v}")),
            "volume-nocopy" | "consistency" => {}
            _ => return Err(bad(&format!("unknown key {k:?}"))),
        }
    }
    if target.is_empty() {
        return Err(bad("target= is required"));
    }
    let target = abs_target("--mount", spec, &target)?;
    match kind {
        MountKind::Bind if source.is_empty() => return Err(bad("source= is required for a bind mount")),
        MountKind::Bind => check_host_path("--mount", spec, &source)?,
        MountKind::Volume if !source.is_empty() && !is_volume_name(&source) => {
            return Err(bad("source= must be a volume name"))
        }
        MountKind::Tmpfs if !source.is_empty() => return Err(bad("a tmpfs mount takes no source")),
        _ => {}
    }
    let anonymous = kind == MountKind::Volume && source.is_empty();
    Ok(MountSpec {
        kind,
        source,
        target,
        readonly,
        anonymous,
        options,
    })
}

/// --tmpfs /path[:opts]
pub fn tmpfs(spec: &str) -> Result<MountSpec> {
    let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let target = abs_target("--tmpfs", spec, dst)?;
    Ok(MountSpec {
        kind: MountKind::Tmpfs,
        source: String::new(),
        target,
        readonly: false,
        anonymous: false,
        options: opts.split(',').filter(|o| !o.is_empty()).map(String::from).collect(),
    })
}

/// An --env-file: KEY=VALUE lines, bare KEY takes the host's value, # comments.
pub fn env_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        what: format!("read env file {}", path.display()),
        source: e,
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let key = l.split('=').next().unwrap_or("");
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(Error::Invalid(format!(
                "{}:{}: invalid variable name {key:?}: names may not be empty or contain spaces",
                path.display(),
                n + 1
            )));
        }
        out.extend(env_var(l));
    }
    Ok(out)
}

/// -e KEY=VALUE, or -e KEY for the host's value (skipped when the host has none).
pub fn env_var(s: &str) -> Option<String> {
    if s.contains('=') {
        Some(s.to_string())
    } else {
        std::env::var(s).ok().map(|v| format!("{s}={v}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("--memory", "64m").ok(), Some(64 << 20));
        assert_eq!(size("--memory", "1G").ok(), Some(1 << 30));
        assert_eq!(size("--memory", "100").ok(), Some(100));
        assert!(size("--memory", "12q").is_err());
        assert!(size("--memory", "").is_err());
        assert!(size("--memory", "-5m").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms("--x", "30s").ok(), Some(30_000));
        assert_eq!(duration_ms("--x", "1m30s").ok(), Some(90_000));
        assert_eq!(duration_ms("--x", "250ms").ok(), Some(250));
        assert_eq!(duration_ms("--x", "5").ok(), Some(5000));
        assert!(duration_ms("--x", "5 parsecs").is_err());
        assert!(duration_ms("--x", "").is_err());
    }

    #[test]
    fn volume_specs() {
        let v = volume("/tmp:/data:ro").expect("bind");
        assert_eq!(
            (v.kind, v.readonly, v.target.as_str()),
            (MountKind::Bind, true, "/data")
        );
        let v = volume("cache:/c").expect("named");
        assert_eq!(
            (v.kind, v.source.as_str(), v.anonymous),
            (MountKind::Volume, "cache", false)
        );
        assert!(volume("/data").expect("anon").anonymous);
        assert!(volume("/no/such/dir/here:/x").is_err());
        assert!(volume("/tmp:relative").is_err());
        assert!(volume("/tmp:/x:bogus").is_err());
        assert!(volume("a:b:c:d").is_err());
        let m = mount("type=bind,source=/tmp,target=/t,readonly").expect("mount");
        assert!(m.readonly && m.kind == MountKind::Bind);
        assert!(mount("type=bind,target=/t").is_err());
        assert!(mount("type=weird,target=/t").is_err());
        assert_eq!(
            tmpfs("/run:size=64k").expect("tmpfs").options,
            vec!["size=64k".to_string()]
        );
    }

    #[test]
    fn env_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("env");
        std::fs::write(&p, "# c\nA=1\n\nB=two words\n").expect("write");
        assert_eq!(
            env_file(&p).expect("parse"),
            vec!["A=1".to_string(), "B=two words".to_string()]
        );
        std::fs::write(&p, "A=1\nBAD KEY=2\n").expect("write");
        let e = env_file(&p).expect_err("bad").to_string();
        assert!(e.contains(":2:"), "{e}");
    }
}
