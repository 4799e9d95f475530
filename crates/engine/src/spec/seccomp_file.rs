//! `--security-opt seccomp=FILE`: a profile in Docker's format (names, action, args, with
//! includes/excludes by capability and architecture, archMap) or plain OCI `linux.seccomp`,
//! turned into the OCI form the runtime loads.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::Value;

use crate::error::{Error, Result};

fn host_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else if cfg!(target_arch = "aarch64") {
        "SCMP_ARCH_AARCH64"
    } else {
        ""
    }
}

fn norm_cap(c: &str) -> String {
    let up = c.to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// Does a Docker `includes`/`excludes` object match this container?
fn matches(filter: Option<&Value>, caps: &[String], arches: &[String]) -> Option<bool> {
    let f = filter?.as_object()?;
    let mut any = false;
    let mut all = true;
    if let Some(cs) = f.get("caps").and_then(Value::as_array) {
        if !cs.is_empty() {
            any = true;
            all &= cs.iter().filter_map(Value::as_str).all(|c| caps.contains(&norm_cap(c)));
        }
    }
    if let Some(a) = f.get("arches").and_then(Value::as_array) {
        if !a.is_empty() {
            any = true;
            all &= a.iter().filter_map(Value::as_str).any(|x| {
                let x = x.to_ascii_uppercase();
                arches.iter().any(|h| h.ends_with(&x) || *h == x)
            });
        }
    }
    any.then_some(all)
}

pub fn parse(text: &str, caps: &[String]) -> Result<LinuxSeccomp> {
    let bad = |m: String| Error::Invalid(format!("seccomp profile: {m}"));
    let mut v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let obj = v.as_object_mut().ok_or_else(|| bad("expected a JSON object".into()))?;
    let host = host_arch();
    let mut arches: Vec<String> = Vec::new();
    if let Some(map) = obj.remove("archMap").and_then(|m| m.as_array().cloned()) {
        for m in map {
            if m.get("architecture").and_then(Value::as_str) == Some(host) {
                arches.push(host.into());
                for s in m
                    .get("subArchitectures")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(s) = s.as_str() {
                        arches.push(s.into());
                    }
                }
            }
        }
        obj.insert("architectures".into(), serde_json::json!(arches));
    }
    if arches.is_empty() {
        arches.push(host.into());
    }
    if let Some(Value::Array(rules)) = obj.get_mut("syscalls") {
        let mut kept = Vec::new();
        for mut r in rules.drain(..) {
            let Some(ro) = r.as_object_mut() else { continue };
            let inc = matches(ro.get("includes"), caps, &arches);
            let exc = matches(ro.get("excludes"), caps, &arches);
            if inc == Some(false) || exc == Some(true) {
                continue;
            }
            for k in ["includes", "excludes", "comment"] {
                ro.remove(k);
            }
            // Docker's old single-name form.
            if let Some(n) = ro.remove("name") {
                ro.insert("names".into(), Value::Array(vec![n]));
            }
            kept.push(r);
        }
        *rules = kept;
    }
    obj.remove("defaultErrno");
    serde_json::from_value(v).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_format_filters_by_capability() {
        let profile = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "comment": "no"}
            ]
        }"#;
        let s = parse(profile, &["CAP_CHOWN".into()]).expect("parse");
        let names: Vec<String> = s.syscalls().iter().flatten().flat_map(|r| r.names().clone()).collect();
        assert!(names.contains(&"read".to_string()) && names.contains(&"chmod".to_string()));
        assert!(!names.contains(&"mount".to_string()));
        let s = parse(profile, &["CAP_SYS_ADMIN".into()]).expect("parse");
        assert!(s
            .syscalls()
            .iter()
            .flatten()
            .any(|r| r.names().contains(&"mount".to_string())));
        assert!(parse("[1]", &[]).is_err());
        assert!(parse("{\"defaultAction\": \"SCMP_ACT_NOPE\"}", &[]).is_err());
    }
}
