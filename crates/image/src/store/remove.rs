//! `rmi` and `image prune`: untag, delete, and free exactly the blobs and layers no image uses.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::Store;

impl Store {
    /// Remove `name` as `docker rmi` does. A tag of an image with other tags is only untagged; an
    /// image named by ID that several repositories tag needs `force`. Returns Docker's report lines.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<String>> {
        let img = self.find(name)?;
        let mut report = Vec::new();
        let by_tag = name
            .parse::<Reference>()
            .ok()
            .and_then(|r| r.tagged().map(|t| (r, t)))
            .filter(|(_, t)| img.tags.contains(t));
        if let Some((r, tag)) = by_tag {
            if img.tags.len() > 1 {
                self.remove_tag(&tag)?;
                return Ok(vec![format!("Untagged: {}", r.familiar())]);
            }
        } else if img.tags.len() > 1 && !force {
            return Err(Error::Conflict(format!(
                "unable to delete {} (must be forced): image is referenced in multiple repositories",
                img.id.short()
            )));
        }
        for name in img.tags.iter().chain(&img.repo_digests) {
            let shown = name
                .parse::<Reference>()
                .map(|r| r.familiar())
                .unwrap_or_else(|_| name.clone());
            report.push(format!("Untagged: {shown}"));
        }
        report.extend(self.delete(&img.id)?);
        Ok(report)
    }

    /// Delete an image's rows, then whatever blobs and layers only it used.
    pub fn delete(&self, id: &Digest) -> Result<Vec<String>> {
        let (blobs, layers) = self.delete_image_rows(id)?;
        self.collect(&blobs, &layers)?;
        Ok(vec![format!("Deleted: {id}")])
    }

    /// Images without a tag (dangling), or with `all` every image; `keep` lists IDs still in use.
    pub fn prune(&self, all: bool, keep: &[Digest]) -> Result<(Vec<Digest>, u64)> {
        let mut removed = Vec::new();
        let mut freed = 0;
        // The build cache's images are not dangling: only `-a` removes them.
        let cached = if all { Vec::new() } else { self.cached_images()? };
        for img in self.images()? {
            if (all || img.tags.is_empty()) && !keep.contains(&img.id) && !cached.contains(&img.id) {
                freed += img.size;
                self.delete(&img.id)?;
                removed.push(img.id);
            }
        }
        // Leftovers of interrupted pulls, once they are old enough not to belong to one running now.
        let (blobs, layers) = self.orphans(std::time::Duration::from_secs(600))?;
        self.collect(&blobs, &layers)?;
        Ok((removed, freed))
    }
}
