//! The image tables of lbox.db. Other crates keep their own tables in the same file.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    created TEXT,
    size INTEGER NOT NULL,
    added INTEGER NOT NULL,
    repo_digests TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id),
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL,
    diff_id TEXT NOT NULL,
    blob TEXT NOT NULL,
    media_type TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    size INTEGER NOT NULL,
    tar_size INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS build_cache_image ON build_cache(image_id);
";

/// Bump when SCHEMA changes (it is applied only to files below this version).
const SCHEMA_VERSION: i64 = 2;

pub fn open(path: &Path) -> Result<Connection> {
    Ok(crate::sqlite::open(path, SCHEMA, SCHEMA_VERSION)?)
}

#[derive(Debug, Clone)]
pub struct ImageLayer {
    pub chain_id: Digest,
    pub diff_id: Digest,
    /// The compressed blob as the manifest lists it.
    pub blob: Digest,
    pub media_type: String,
    pub blob_size: u64,
    /// Bytes of file data once unpacked.
    pub size: u64,
    /// Length of the uncompressed layer tar.
    pub tar_size: u64,
}

#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub created: Option<String>,
    pub size: u64,
    pub added: i64,
    pub repo_digests: Vec<String>,
    pub tags: Vec<String>,
}

pub struct NewImage {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub created: Option<String>,
    pub layers: Vec<ImageLayer>,
    pub tag: Option<String>,
    pub repo_digest: Option<String>,
}

fn digest_col(s: String) -> rusqlite::Result<Digest> {
    s.parse()
        .map_err(|e: Error| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Record a complete image. Every blob and layer directory it names must already be in place.
    pub fn commit_image(&self, img: &NewImage) -> Result<()> {
        let _lock = self.lock()?;
        for l in &img.layers {
            if !self.layer_path(&l.chain_id).is_dir() {
                return Err(Error::Conflict(format!(
                    "layer {} was removed while the image was being stored; run the command again",
                    l.chain_id
                )));
            }
        }
        for d in [&img.manifest_digest, &img.id] {
            if !self.has_blob(d) {
                return Err(Error::Conflict(format!(
                    "blob {d} is missing from the store; run the command again"
                )));
            }
        }
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        let size: u64 = img.layers.iter().map(|l| l.size).sum();
        let old: Option<String> = tx
            .query_row(
                "SELECT repo_digests FROM images WHERE id = ?1",
                [img.id.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let mut repo_digests: Vec<String> = old.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
        if let Some(rd) = &img.repo_digest {
            if !repo_digests.contains(rd) {
                repo_digests.push(rd.clone());
            }
        }
        let rd_json = serde_json::to_string(&repo_digests).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO images (id, manifest_digest, manifest_media_type, created, size, added, repo_digests)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(id) DO UPDATE SET manifest_digest = ?2, manifest_media_type = ?3, repo_digests = ?7",
            params![
                img.id.to_string(),
                img.manifest_digest.to_string(),
                img.manifest_media_type,
                img.created,
                size as i64,
                now(),
                rd_json
            ],
        )?;
        tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [img.id.to_string()])?;
        for (i, l) in img.layers.iter().enumerate() {
            tx.execute(
                "INSERT INTO image_layers (image_id, position, chain_id, diff_id, blob, media_type, blob_size, size, tar_size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    img.id.to_string(),
                    i as i64,
                    l.chain_id.to_string(),
                    l.diff_id.to_string(),
                    l.blob.to_string(),
                    l.media_type,
                    l.blob_size as i64,
                    l.size as i64,
                    l.tar_size as i64
                ],
            )?;
        }
        if let Some(t) = &img.tag {
            tx.execute(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET image_id = ?2",
                params![t, img.id.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn record(db: &Connection, row: &rusqlite::Row) -> rusqlite::Result<ImageRecord> {
        let id = digest_col(row.get(0)?)?;
        let rd: String = row.get(6)?;
        let mut st = db.prepare_cached("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
        let tags = st
            .query_map([id.to_string()], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ImageRecord {
            id,
            manifest_digest: digest_col(row.get(1)?)?,
            manifest_media_type: row.get(2)?,
            created: row.get(3)?,
            size: row.get::<_, i64>(4)? as u64,
            added: row.get(5)?,
            repo_digests: serde_json::from_str(&rd).unwrap_or_default(),
            tags,
        })
    }

    const COLS: &'static str = "id, manifest_digest, manifest_media_type, created, size, added, repo_digests";

    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let db = self.db();
        let mut st = db.prepare(&format!("SELECT {} FROM images ORDER BY added DESC, id", Self::COLS))?;
        let rows = st
            .query_map([], |r| Self::record(&db, r))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        let db = self.db();
        let mut st = db.prepare(&format!("SELECT {} FROM images WHERE id = ?1", Self::COLS))?;
        let r = st.query_row([id.to_string()], |r| Self::record(&db, r)).optional()?;
        Ok(r)
    }

    pub fn image_layers(&self, id: &Digest) -> Result<Vec<ImageLayer>> {
        let db = self.db();
        let mut st = db.prepare(
            "SELECT chain_id, diff_id, blob, media_type, blob_size, size, tar_size FROM image_layers
             WHERE image_id = ?1 ORDER BY position",
        )?;
        let rows = st
            .query_map([id.to_string()], |r| {
                Ok(ImageLayer {
                    chain_id: digest_col(r.get(0)?)?,
                    diff_id: digest_col(r.get(1)?)?,
                    blob: digest_col(r.get(2)?)?,
                    media_type: r.get(3)?,
                    blob_size: r.get::<_, i64>(4)? as u64,
                    size: r.get::<_, i64>(5)? as u64,
                    tar_size: r.get::<_, i64>(6)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Find an image the way Docker does: full ID, then name[:tag] or name@digest, then ID prefix.
    pub fn find(&self, s: &str) -> Result<ImageRecord> {
        let not_found = || Error::ImageNotFound(s.to_string());
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        let is_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex && hex.len() == 64 {
            if let Some(r) = self.image(&format!("sha256:{hex}").parse()?)? {
                return Ok(r);
            }
        }
        if let Ok(r) = s.parse::<Reference>() {
            if let Some(d) = &r.digest {
                let want = format!("{}@{d}", r.name());
                if let Some(img) = self.images()?.into_iter().find(|i| i.repo_digests.contains(&want)) {
                    return Ok(img);
                }
            } else if let Some(t) = r.tagged() {
                if let Some(id) = self.tag_target(&t)? {
                    return self.image(&id)?.ok_or_else(not_found);
                }
            }
        }
        if is_hex && hex.len() < 64 {
            let ids = self
                .db()
                .prepare("SELECT id FROM images WHERE substr(id, 8, ?1) = ?2")?
                .query_map(params![hex.len() as i64, hex], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            match ids.as_slice() {
                [one] => return self.image(&one.parse()?)?.ok_or_else(not_found),
                [] => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "image ID prefix {s:?} is ambiguous: use more characters"
                    )))
                }
            }
        }
        Err(not_found())
    }

    pub fn set_tag(&self, name: &str, id: &Digest) -> Result<()> {
        self.db().execute(
            "INSERT INTO tags (name, image_id) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET image_id = ?2",
            params![name, id.to_string()],
        )?;
        Ok(())
    }

    pub fn remove_tag(&self, name: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM tags WHERE name = ?1", [name])? > 0)
    }

    pub fn tag_target(&self, name: &str) -> Result<Option<Digest>> {
        let id: Option<String> = self
            .db()
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        id.map(|s| s.parse()).transpose()
    }

    /// Drop an image's rows (tags included); returns the blobs and layers it used, for collection.
    pub(crate) fn delete_image_rows(&self, id: &Digest) -> Result<(Vec<Digest>, Vec<Digest>)> {
        let rec = self.image(id)?.ok_or_else(|| Error::ImageNotFound(id.to_string()))?;
        let layers = self.image_layers(id)?;
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        tx.execute("DELETE FROM tags WHERE image_id = ?1", [id.to_string()])?;
        tx.execute("DELETE FROM build_cache WHERE image_id = ?1", [id.to_string()])?;
        tx.execute("DELETE FROM image_layers WHERE image_id = ?1", [id.to_string()])?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id.to_string()])?;
        tx.commit()?;
        let mut blobs = vec![rec.manifest_digest, rec.id];
        blobs.extend(layers.iter().map(|l| l.blob.clone()));
        Ok((blobs, layers.into_iter().map(|l| l.chain_id).collect()))
    }

    pub(crate) fn blob_in_use(&self, d: &Digest) -> Result<bool> {
        let s = d.to_string();
        let n: i64 = self.db().query_row(
            "SELECT (SELECT count(*) FROM images WHERE id = ?1 OR manifest_digest = ?1)
                  + (SELECT count(*) FROM image_layers WHERE blob = ?1)",
            [&s],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    pub(crate) fn layer_in_use(&self, chain_id: &Digest) -> Result<bool> {
        let n: i64 = self.db().query_row(
            "SELECT count(*) FROM image_layers WHERE chain_id = ?1",
            [chain_id.to_string()],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }
}

impl Store {
    /// Remember that `name@digest` is this image (after a push), as Docker's RepoDigests do.
    pub fn add_repo_digest(&self, id: &Digest, repo_digest: &str) -> Result<()> {
        let Some(img) = self.image(id)? else { return Ok(()) };
        let mut rds = img.repo_digests;
        if !rds.iter().any(|r| r == repo_digest) {
            rds.push(repo_digest.to_string());
            let json = serde_json::to_string(&rds).unwrap_or_else(|_| "[]".into());
            self.db().execute(
                "UPDATE images SET repo_digests = ?1 WHERE id = ?2",
                params![json, id.to_string()],
            )?;
        }
        Ok(())
    }
}
