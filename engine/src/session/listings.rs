//! Source listings kept from one run to the next, for a long-lived session such as a
//! server's: a run then lists no folder and reads no manifest or footer of its own, and
//! `refresh` (called off the request path, e.g. every second) lists them again and
//! replaces what changed. A session without this cache lists at every run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::project::SourceDef;
use crate::store::{SourceListing, Store};

#[derive(Debug, Default)]
pub(crate) struct ListingCache {
    /// The store's top-level folders (undeclared sources), once listed.
    folders: Mutex<Option<Vec<String>>>,
    /// Each source listed so far, with the definition it was listed by.
    sources: Mutex<HashMap<String, (SourceDef, SourceListing)>>,
    /// Bumped whenever a refresh finds a change.
    generation: AtomicU64,
}

/// What identifies a listing's content: its files (path, size, modification time, etag),
/// schema, partitions and sample build. A rewritten file or manifest changes it.
fn same_listing(a: &SourceListing, b: &SourceListing) -> bool {
    a.files.len() == b.files.len()
        && a.files.iter().zip(&b.files).all(|(x, y)| {
            x.meta.location == y.meta.location
                && x.meta.size == y.meta.size
                && x.meta.last_modified == y.meta.last_modified
                && x.meta.e_tag == y.meta.e_tag
        })
        && a.file_schema == b.file_schema
        && a.partitions == b.partitions
        && a.managed == b.managed
        && a.built_sample == b.built_sample
}

impl ListingCache {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    pub(crate) async fn folders(&self, store: &Store) -> Result<Vec<String>> {
        if let Some(f) = self.folders.lock().expect("listing cache").as_ref() {
            return Ok(f.clone());
        }
        let listed = store.folders().await?;
        *self.folders.lock().expect("listing cache") = Some(listed.clone());
        Ok(listed)
    }

    pub(crate) async fn listing(&self, store: &Store, def: &SourceDef) -> Result<SourceListing> {
        if let Some((cached_def, listing)) =
            self.sources.lock().expect("listing cache").get(&def.name)
            && cached_def.path == def.path
        {
            return Ok(listing.clone());
        }
        // A failed listing is not kept: the next run tries again (and fails the same way
        // until the source is fixed).
        let listing = store.list_source(def).await?;
        self.sources
            .lock()
            .expect("listing cache")
            .insert(def.name.clone(), (def.clone(), listing.clone()));
        Ok(listing)
    }

    /// Lists the store's folders and every cached source again; replaces what changed
    /// and drops what no longer lists. Returns whether anything changed.
    pub(crate) async fn refresh(&self, store: &Store) -> Result<bool> {
        let mut changed = false;
        let had_folders = self.folders.lock().expect("listing cache").is_some();
        if had_folders {
            let listed = store.folders().await?;
            let mut folders = self.folders.lock().expect("listing cache");
            if folders.as_ref() != Some(&listed) {
                *folders = Some(listed);
                changed = true;
            }
        }
        let cached: Vec<(SourceDef, SourceListing)> = self
            .sources
            .lock()
            .expect("listing cache")
            .values()
            .cloned()
            .collect();
        for (def, old) in cached {
            let fresh = store.list_source(&def).await;
            let mut sources = self.sources.lock().expect("listing cache");
            match fresh {
                Ok(new) if same_listing(&old, &new) => {}
                Ok(new) => {
                    sources.insert(def.name.clone(), (def, new));
                    changed = true;
                }
                Err(e) => {
                    tracing::warn!(source = %def.name, error = %e, "a cached source no longer lists");
                    sources.remove(&def.name);
                    changed = true;
                }
            }
        }
        if changed {
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        Ok(changed)
    }
}
