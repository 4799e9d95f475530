//! The build cache: a build step's key (its instruction, its inputs and its parent's key) → the
//! image that step made. The images are ordinary ones, untagged; `images` hides them (`-a` shows
//! them) and only `image prune -a` removes them, as Docker does with its intermediate images.

use rusqlite::OptionalExtension;

use crate::digest::Digest;
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// The image a step with this key made, if it is still in the store.
    pub fn cache_get(&self, key: &str) -> Result<Option<Digest>> {
        let id: Option<String> = self
            .db()
            .query_row("SELECT image_id FROM build_cache WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        let Some(id) = id.and_then(|s| s.parse::<Digest>().ok()) else {
            return Ok(None);
        };
        Ok(self.image(&id)?.map(|_| id))
    }

    pub fn cache_put(&self, key: &str, id: &Digest) -> Result<()> {
        self.db().execute(
            "INSERT INTO build_cache (key, image_id) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET image_id = ?2",
            [key, &id.to_string()],
        )?;
        Ok(())
    }

    /// IDs of the images the build cache holds.
    pub fn cached_images(&self) -> Result<Vec<Digest>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT DISTINCT image_id FROM build_cache")?;
        let ids = st
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids.into_iter().filter_map(|s| s.parse().ok()).collect())
    }
}
