//! Loading and checking a bundle's `config.json`.
//!
//! Errors name the JSON field that is wrong (`process.user.uid`), because "invalid type at line 12" is
//! useless to someone reading a spec that a tool generated.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::error::{Error, Result};

/// A parsed spec together with the absolute paths it refers to.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Self> {
        let dir = fs::canonicalize(dir)
            .map_err(|e| Error::Bundle(dir.to_path_buf(), format!("cannot open bundle directory: {e}")))?;
        let file = dir.join("config.json");
        let text = fs::read_to_string(&file)
            .map_err(|e| Error::Bundle(dir.clone(), format!("cannot read config.json: {e}")))?;
        let spec = parse(&file, &text)?;
        Self::checked(dir, file, spec)
    }

    /// A bundle whose config.json holds `spec`, given by the caller that wrote it.
    pub fn from_spec(dir: &Path, spec: Spec) -> Result<Self> {
        let dir = fs::canonicalize(dir)
            .map_err(|e| Error::Bundle(dir.to_path_buf(), format!("cannot open bundle directory: {e}")))?;
        let file = dir.join("config.json");
        Self::checked(dir, file, spec)
    }

    fn checked(dir: PathBuf, file: PathBuf, spec: Spec) -> Result<Self> {
        let root = spec.root().as_ref().ok_or_else(|| Error::Config {
            file: file.clone(),
            field: "root".into(),
            msg: "missing: the spec must name a root filesystem".into(),
        })?;
        let rootfs = if root.path().is_absolute() {
            root.path().clone()
        } else {
            dir.join(root.path())
        };
        if !rootfs.is_dir() {
            return Err(Error::Config {
                file,
                field: "root.path".into(),
                msg: format!(
                    "root filesystem {} does not exist or is not a directory",
                    rootfs.display()
                ),
            });
        }
        validate(&file, &spec)?;
        Ok(Bundle { dir, spec, rootfs })
    }

    pub fn process(&self) -> Result<&Process> {
        self.spec.process().as_ref().ok_or_else(|| Error::Config {
            file: self.dir.join("config.json"),
            field: "process".into(),
            msg: "missing: the spec has no process to run".into(),
        })
    }
}

/// Parse JSON text into a spec, naming the offending field on failure.
pub fn parse(file: &Path, text: &str) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        Error::Config {
            file: file.to_path_buf(),
            field: if field == "." { "(document)".into() } else { field },
            msg: format!("{inner}"),
        }
    })
}

/// Parse a `process.json` (runc exec --process) the same way.
pub fn parse_process(file: &Path, text: &str) -> Result<Process> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        Error::Config {
            file: file.to_path_buf(),
            field,
            msg: format!("{}", e.into_inner()),
        }
    })
}

fn validate(file: &Path, spec: &Spec) -> Result<()> {
    let bad = |field: &str, msg: String| Error::Config {
        file: file.to_path_buf(),
        field: field.to_string(),
        msg,
    };
    if spec.version().is_empty() {
        return Err(bad("ociVersion", "missing".into()));
    }
    if !spec.version().starts_with("1.") {
        return Err(bad(
            "ociVersion",
            format!("unsupported version {:?}; lbox-runc speaks 1.x", spec.version()),
        ));
    }
    if let Some(p) = spec.process() {
        match p.args() {
            Some(a) if !a.is_empty() => {}
            _ => return Err(bad("process.args", "must name at least the program to run".into())),
        }
        if !p.cwd().is_absolute() {
            return Err(bad("process.cwd", format!("{:?} is not an absolute path", p.cwd())));
        }
    }
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                return Err(bad(
                    &format!("mounts[{i}].destination"),
                    format!("{:?} is not an absolute path", m.destination()),
                ));
            }
        }
    }
    if let Some(linux) = spec.linux() {
        let mut seen = HashSet::new();
        for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
            if !seen.insert(ns.typ()) {
                return Err(bad(
                    &format!("linux.namespaces[{i}]"),
                    format!("namespace {} listed twice", ns.typ()),
                ));
            }
            if let Some(path) = ns.path() {
                if !path.exists() {
                    return Err(bad(
                        &format!("linux.namespaces[{i}].path"),
                        format!("{} does not exist", path.display()),
                    ));
                }
            }
        }
        let has_user = seen.contains(&LinuxNamespaceType::User);
        let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if maps && !has_user {
            return Err(bad("linux.uidMappings", "given without a user namespace".into()));
        }
        if let Some(p) = linux.rootfs_propagation() {
            if crate::mount::propagation_flag(p).is_none() && !p.is_empty() {
                return Err(bad("linux.rootfsPropagation", format!("unknown propagation {p:?}")));
            }
        }
    }
    Ok(())
}

/// The namespaces the spec asks for: (kind, optional path to join).
pub fn namespaces(spec: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|v| v.iter().map(|n| (n.typ(), n.path().clone())).collect())
        .unwrap_or_default()
}

pub fn has_new_namespace(spec: &Spec, kind: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|(k, p)| *k == kind && p.is_none())
}

pub fn has_namespace(spec: &Spec, kind: LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|(k, _)| *k == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_field_is_named() {
        let text = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":"root","gid":0},"args":["sh"],"cwd":"/"}}"#;
        let err = parse(Path::new("config.json"), text).unwrap_err().to_string();
        assert!(err.contains("process.user.uid"), "{err}");
    }

    #[test]
    fn unknown_capability_is_named() {
        let text = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"/",
            "capabilities":{"bounding":["CAP_NOPE"]}}}"#;
        let err = parse(Path::new("c.json"), text).unwrap_err().to_string();
        assert!(err.contains("process.capabilities.bounding"), "{err}");
    }

    #[test]
    fn validate_rejects_relative_cwd_and_duplicate_ns() {
        let text = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["sh"],"cwd":"tmp"}}"#;
        let spec = parse(Path::new("c"), text).unwrap();
        assert!(validate(Path::new("c"), &spec)
            .unwrap_err()
            .to_string()
            .contains("process.cwd"));
        let text = r#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#;
        let spec = parse(Path::new("c"), text).unwrap();
        assert!(validate(Path::new("c"), &spec)
            .unwrap_err()
            .to_string()
            .contains("linux.namespaces[1]"));
    }

    #[test]
    fn empty_args_rejected() {
        let text = r#"{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":[],"cwd":"/"}}"#;
        let spec = parse(Path::new("c"), text).unwrap();
        assert!(validate(Path::new("c"), &spec)
            .unwrap_err()
            .to_string()
            .contains("process.args"));
    }
}
