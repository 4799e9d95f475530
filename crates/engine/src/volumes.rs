//! Named and anonymous volumes: a row in the state DB and a directory, volumes/<name>/_data.
//! A volume is only ever deleted by `volume rm`/`prune` or `rm -v` of an anonymous one.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use crate::config::MountKind;
use crate::error::{Context, Error, Result};
use crate::Engine;

#[derive(Debug, Clone)]
pub struct Volume {
    pub name: String,
    pub created: i64,
    pub labels: BTreeMap<String, String>,
    pub anonymous: bool,
}

/// Make the volume if it does not exist yet (first use creates it, as in Docker).
pub fn ensure(e: &Engine, name: &str, anonymous: bool) -> Result<()> {
    if get(e, name)?.is_some() {
        return Ok(());
    }
    create(e, name, &BTreeMap::new(), anonymous).map(|_| ())
}

pub fn create(e: &Engine, name: &str, labels: &BTreeMap<String, String>, anonymous: bool) -> Result<Volume> {
    let dir = e.paths.volume(name);
    std::fs::create_dir_all(&dir).ctx(|| format!("create volume directory {}", dir.display()))?;
    let v = Volume {
        name: name.into(),
        created: crate::time::now_ns(),
        labels: labels.clone(),
        anonymous,
    };
    let labels = serde_json::to_string(labels).unwrap_or_else(|_| "{}".into());
    e.db().execute(
        "INSERT OR IGNORE INTO volumes(name, created, labels, anonymous) VALUES(?1, ?2, ?3, ?4)",
        params![v.name, v.created, labels, anonymous as i64],
    )?;
    Ok(v)
}

fn from_row(r: &rusqlite::Row) -> rusqlite::Result<Volume> {
    let labels: String = r.get(2)?;
    Ok(Volume {
        name: r.get(0)?,
        created: r.get(1)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        anonymous: r.get::<_, i64>(3)? != 0,
    })
}

pub fn get(e: &Engine, name: &str) -> Result<Option<Volume>> {
    Ok(e.db()
        .query_row(
            "SELECT name, created, labels, anonymous FROM volumes WHERE name = ?1",
            [name],
            from_row,
        )
        .optional()?)
}

pub fn list(e: &Engine) -> Result<Vec<Volume>> {
    let mut st = e
        .db()
        .prepare("SELECT name, created, labels, anonymous FROM volumes ORDER BY name")?;
    let rows = st.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Containers (names) whose mounts use the volume.
pub fn users(e: &Engine, name: &str) -> Result<Vec<String>> {
    Ok(crate::db::all(e.db())?
        .into_iter()
        .filter(|c| {
            c.config
                .mounts
                .iter()
                .any(|m| m.kind == MountKind::Volume && m.source == name)
        })
        .map(|c| c.name)
        .collect())
}

pub fn remove(e: &Engine, name: &str, force: bool) -> Result<()> {
    if get(e, name)?.is_none() {
        return Err(Error::NoSuchVolume(name.into()));
    }
    if let Some(c) = users(e, name)?.into_iter().next() {
        if !force {
            return Err(Error::VolumeInUse {
                name: name.into(),
                container: c,
            });
        }
    }
    delete(e, name)
}

fn delete(e: &Engine, name: &str) -> Result<()> {
    let dir = e.paths.volumes().join(name);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).ctx(|| format!("remove volume directory {}", dir.display())),
    }
    e.db().execute("DELETE FROM volumes WHERE name = ?1", [name])?;
    Ok(())
}

/// Remove volumes no container uses (only anonymous ones unless `all`); returns (names, bytes).
pub fn prune(e: &Engine, all: bool) -> Result<(Vec<String>, u64)> {
    let mut removed = Vec::new();
    let mut bytes = 0;
    for v in list(e)? {
        if (all || v.anonymous) && users(e, &v.name)?.is_empty() {
            bytes += dir_size(&e.paths.volumes().join(&v.name));
            delete(e, &v.name)?;
            removed.push(v.name);
        }
    }
    Ok((removed, bytes))
}

pub fn dir_size(p: &std::path::Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else { return 0 };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}
