//! The engine's state database (SQLite, WAL, busy timeout): one row per container and per volume.
//! Many `lbox` processes and monitors use it at once; every multi-step change is one transaction.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::config::ContainerConfig;
use crate::error::{Context, Error, Result};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created INTEGER NOT NULL,
    config TEXT NOT NULL,
    state TEXT NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    pid_start INTEGER NOT NULL DEFAULT 0,
    monitor_pid INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER NOT NULL DEFAULT 0,
    started INTEGER NOT NULL DEFAULT 0,
    finished INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    manual_stop INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    health TEXT NOT NULL DEFAULT '',
    health_log TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS volumes(
    name TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    anonymous INTEGER NOT NULL DEFAULT 0
);
";

/// Bump when SCHEMA changes (it is applied only to files below this version).
/// 2: the network crate's tables (networks, leases). 3: published ports.
const SCHEMA_VERSION: i64 = 3;

pub fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
    }
    let schema = format!("{SCHEMA}{}{}", network::ipam::SCHEMA, network::ports::SCHEMA);
    Ok(image::sqlite::open(path, &schema, SCHEMA_VERSION)?)
}

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> State {
        match s {
            "created" => State::Created,
            "running" => State::Running,
            "paused" => State::Paused,
            "restarting" => State::Restarting,
            "exited" => State::Exited,
            _ => State::Dead,
        }
    }

    /// Something (a monitor or a foreground `run`) is responsible for the container.
    pub fn is_active(self) -> bool {
        matches!(self, State::Running | State::Paused | State::Restarting)
    }
}

#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// Unix time in nanoseconds.
    pub created: i64,
    pub config: ContainerConfig,
    pub state: State,
    pub pid: i32,
    pub pid_start: u64,
    pub monitor_pid: i32,
    pub exit_code: i32,
    pub started: i64,
    pub finished: i64,
    pub restarts: u32,
    pub manual_stop: bool,
    pub error: String,
    pub health: String,
    pub health_log: String,
}

impl Container {
    /// The init's pid while the container runs (its record says so and the process is still
    /// the one recorded).
    pub fn running_pid(&self) -> Option<i32> {
        (self.state.is_active() && self.pid > 0 && runtime::state::pid_alive(self.pid, self.pid_start))
            .then_some(self.pid)
    }

    /// A new container, not started yet.
    pub fn new(id: String, name: String, config: ContainerConfig) -> Container {
        Container {
            id,
            name,
            created: crate::time::now_ns(),
            config,
            state: State::Created,
            pid: 0,
            pid_start: 0,
            monitor_pid: 0,
            exit_code: 0,
            started: 0,
            finished: 0,
            restarts: 0,
            manual_stop: false,
            error: String::new(),
            health: String::new(),
            health_log: "[]".into(),
        }
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    fn from_row(r: &Row) -> rusqlite::Result<Container> {
        let config: String = r.get("config")?;
        let config = serde_json::from_str(&config)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, Box::new(e)))?;
        Ok(Container {
            id: r.get("id")?,
            name: r.get("name")?,
            created: r.get("created")?,
            config,
            state: State::parse(&r.get::<_, String>("state")?),
            pid: r.get("pid")?,
            pid_start: r.get::<_, i64>("pid_start")? as u64,
            monitor_pid: r.get("monitor_pid")?,
            exit_code: r.get("exit_code")?,
            started: r.get("started")?,
            finished: r.get("finished")?,
            restarts: r.get::<_, i64>("restarts")? as u32,
            manual_stop: r.get::<_, i64>("manual_stop")? != 0,
            error: r.get("error")?,
            health: r.get("health")?,
            health_log: r.get("health_log")?,
        })
    }
}

pub fn insert(c: &Connection, ct: &Container) -> Result<()> {
    let config = serde_json::to_string(&ct.config).map_err(|e| Error::Invalid(format!("container config: {e}")))?;
    let r = c.execute(
        "INSERT INTO containers(id, name, created, config, state) VALUES(?1, ?2, ?3, ?4, ?5)",
        params![ct.id, ct.name, ct.created, config, ct.state.as_str()],
    );
    match r {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            let id = by_name(c, &ct.name)?.map(|o| o.id).unwrap_or_default();
            Err(Error::NameInUse {
                name: ct.name.clone(),
                id,
            })
        }
        Err(e) => Err(e.into()),
    }
}

pub fn all(c: &Connection) -> Result<Vec<Container>> {
    let mut st = c.prepare_cached("SELECT * FROM containers ORDER BY created DESC")?;
    let rows = st.query_map([], Container::from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn get(c: &Connection, id: &str) -> Result<Option<Container>> {
    Ok(
        c.query_row("SELECT * FROM containers WHERE id = ?1", [id], Container::from_row)
            .optional()?,
    )
}

pub fn by_name(c: &Connection, name: &str) -> Result<Option<Container>> {
    Ok(
        c.query_row("SELECT * FROM containers WHERE name = ?1", [name], Container::from_row)
            .optional()?,
    )
}

/// Find a container by name, full ID or unique ID prefix (Docker's order).
pub fn find(c: &Connection, key: &str) -> Result<Container> {
    if let Some(ct) = by_name(c, key.strip_prefix('/').unwrap_or(key))? {
        return Ok(ct);
    }
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut st = c.prepare_cached("SELECT * FROM containers WHERE id >= ?1 AND id < ?2 LIMIT 10")?;
        let hi = format!("{key}g");
        let found = st
            .query_map(params![key, hi], Container::from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        match found.len() {
            0 => {}
            1 => return Ok(found.into_iter().next().expect("one row")),
            _ => {
                return Err(Error::Ambiguous {
                    prefix: key.into(),
                    matches: found.iter().map(|c| format!("{} ({})", c.short_id(), c.name)).collect(),
                })
            }
        }
    }
    Err(Error::NoSuchContainer(key.into()))
}

/// Record the container running. A container with a health check is "starting" from this
/// moment (as Docker reports right after `run -d`), not from when its monitor first looks.
/// `manual_stop` is left alone: a `stop` that lands while the monitor restarts the container
/// must not be forgotten (the user's own start clears it, in `lifecycle`).
pub fn set_running(c: &Connection, ct: &Container, pid: i32, pid_start: u64, monitor: i32, started: i64) -> Result<()> {
    c.execute(
        "UPDATE containers SET state = 'running', pid = ?2, pid_start = ?3, monitor_pid = ?4, started = ?5,
         exit_code = 0, error = '', health = CASE WHEN ?6 THEN 'starting' ELSE '' END
         WHERE id = ?1",
        params![
            ct.id,
            pid,
            pid_start as i64,
            monitor,
            started,
            ct.config.health.is_some()
        ],
    )?;
    Ok(())
}

pub fn set_exited(c: &Connection, id: &str, code: i32, finished: i64, error: &str) -> Result<()> {
    c.execute(
        "UPDATE containers SET state = 'exited', pid = 0, pid_start = 0, monitor_pid = 0, exit_code = ?2,
         finished = ?3, error = ?4 WHERE id = ?1",
        params![id, code, finished, error],
    )?;
    Ok(())
}

/// A start that failed before the program ran: the container stays created, with Docker's
/// exit code for why (125/126/127) and the error.
pub fn set_start_failed(c: &Connection, id: &str, code: i32, error: &str) -> Result<()> {
    c.execute(
        "UPDATE containers SET state = 'created', pid = 0, pid_start = 0, monitor_pid = 0, exit_code = ?2,
         error = ?3 WHERE id = ?1",
        params![id, code, error],
    )?;
    Ok(())
}

pub fn set_state(c: &Connection, id: &str, state: State) -> Result<()> {
    c.execute(
        "UPDATE containers SET state = ?2 WHERE id = ?1",
        params![id, state.as_str()],
    )?;
    Ok(())
}

pub fn set_manual_stop(c: &Connection, id: &str, manual: bool) -> Result<()> {
    c.execute(
        "UPDATE containers SET manual_stop = ?2 WHERE id = ?1",
        params![id, manual as i64],
    )?;
    Ok(())
}

pub fn add_restart(c: &Connection, id: &str) -> Result<()> {
    c.execute(
        "UPDATE containers SET restarts = restarts + 1, state = 'restarting' WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

pub fn set_health(c: &Connection, id: &str, health: &str, log: &str) -> Result<()> {
    c.execute(
        "UPDATE containers SET health = ?2, health_log = ?3 WHERE id = ?1",
        params![id, health, log],
    )?;
    Ok(())
}

pub fn set_config(c: &Connection, id: &str, config: &crate::config::ContainerConfig) -> Result<()> {
    let text = serde_json::to_string(config).map_err(|e| Error::Invalid(format!("container config: {e}")))?;
    c.execute("UPDATE containers SET config = ?2 WHERE id = ?1", params![id, text])?;
    Ok(())
}

pub fn rename(c: &Connection, id: &str, name: &str) -> Result<()> {
    match c.execute("UPDATE containers SET name = ?2 WHERE id = ?1", params![id, name]) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            let other = by_name(c, name)?.map(|o| o.id).unwrap_or_default();
            Err(Error::NameInUse {
                name: name.into(),
                id: other,
            })
        }
        Err(e) => Err(e.into()),
    }
}

pub fn delete(c: &Connection, id: &str) -> Result<()> {
    c.execute("DELETE FROM containers WHERE id = ?1", [id])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(id: &str, name: &str) -> Container {
        Container::new(id.into(), name.into(), ContainerConfig::default())
    }

    #[test]
    fn lookup_by_name_id_and_prefix() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = open(&dir.path().join("lbox.db")).expect("open");
        insert(&c, &ct("abc123", "web")).expect("insert");
        insert(&c, &ct("abd456", "db")).expect("insert");
        assert_eq!(find(&c, "web").expect("name").id, "abc123");
        assert_eq!(find(&c, "abc123").expect("id").name, "web");
        assert_eq!(find(&c, "abd").expect("prefix").name, "db");
        assert!(matches!(find(&c, "ab"), Err(Error::Ambiguous { .. })));
        assert!(matches!(find(&c, "zz"), Err(Error::NoSuchContainer(_))));
        assert!(matches!(insert(&c, &ct("ff", "web")), Err(Error::NameInUse { .. })));
        assert!(matches!(rename(&c, "abc123", "db"), Err(Error::NameInUse { .. })));
        rename(&c, "abc123", "web2").expect("rename");
        assert_eq!(find(&c, "web2").expect("renamed").id, "abc123");
    }
}
