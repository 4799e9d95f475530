//! SQLite as every LockBox state file uses it (the image store's, the engine's): WAL, NORMAL
//! sync, a busy timeout, a short WAL, and a schema applied once per version.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Open (creating) the database at `path` and bring its schema to `version`: `schema` is a batch
/// of idempotent statements (`CREATE … IF NOT EXISTS`), run only while the file's
/// `user_version` is below `version`, since parsing it at every open cost each command ~0.5 ms.
pub fn open(path: &Path, schema: &str, version: i64) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(30))?;
    // SQLite does not call the busy handler while a closing connection briefly holds the file
    // exclusively to tidy the WAL (documented in its wal.html): a process opening the database
    // at that moment gets SQLITE_BUSY at once. Many lbox processes start and end together, so
    // retry the opening steps for as long as the busy timeout.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match setup(&c, schema, version) {
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
            Ok(()) => return Ok(c),
        }
    }
}

fn setup(c: &Connection, schema: &str, version: i64) -> rusqlite::Result<()> {
    // WAL lets readers run while a monitor writes; NORMAL sync is durable at checkpoints, which
    // is what a crash-recoverable state file needs (rows are reconciled with the kernel anyway).
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    // Every lbox command is a short-lived process, usually the database's only user: without
    // this, each exit would checkpoint and delete the WAL, and the next command recreate it.
    c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    // Being the only user, each process also rebuilds the WAL index at open by reading the whole
    // WAL (3.3 µs a page here), while a checkpoint's fsyncs cost 5-13 ms when the disk has dirty
    // metadata (container runs make plenty). With ~7 pages written per container run, 128
    // balances the two at about 0.5 ms a run, against 1.7 ms with SQLite's default of 1000.
    c.pragma_update(None, "wal_autocheckpoint", 128)?;
    let current: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current < version {
        c.execute_batch(schema)?;
        c.pragma_update(None, "user_version", version)?;
    }
    Ok(())
}
