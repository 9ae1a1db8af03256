//! Results kept for pipes that set `cache = "30s"`: the encoded body of a call, keyed by
//! the pipe's version, the format and the bound parameter values, for at most the
//! pipe's time and within `serve.cache_bytes` (least recently used first out). The
//! server empties it whenever its refresh finds a change in the store (a promotion, a
//! rollback, an ingest, a materialization, any new file of a source), so a kept result
//! is never older than the data and version it was computed from.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lru::LruCache;

/// What a cached call answers with.
#[derive(Debug, Clone)]
pub struct CachedResult {
    pub body: Bytes,
    pub content_type: &'static str,
    pub rows_out: u64,
    expires: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub pipe: String,
    pub version: String,
    pub format: String,
    /// `name=value` of every parameter, bound values (defaults included), in name order.
    pub params: String,
}

struct Inner {
    entries: LruCache<CacheKey, CachedResult>,
    bytes: u64,
}

pub struct ResultCache {
    inner: Mutex<Inner>,
    capacity: u64,
}

fn size(key: &CacheKey, r: &CachedResult) -> u64 {
    (r.body.len() + key.pipe.len() + key.version.len() + key.format.len() + key.params.len()) as u64
        + 128
}

impl ResultCache {
    pub fn new(capacity: u64) -> ResultCache {
        ResultCache {
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            capacity,
        }
    }

    /// The kept result of `key`, if it has not expired.
    pub fn get(&self, key: &CacheKey) -> Option<CachedResult> {
        let mut inner = self.inner.lock().expect("result cache");
        let hit = inner.entries.get(key).cloned()?;
        if hit.expires > Instant::now() {
            return Some(hit);
        }
        if let Some(old) = inner.entries.pop(key) {
            inner.bytes -= size(key, &old);
        }
        None
    }

    /// Keeps a result for `ttl`; one larger than the whole cache is not kept.
    pub fn put(
        &self,
        key: CacheKey,
        body: Bytes,
        content_type: &'static str,
        rows_out: u64,
        ttl: Duration,
    ) {
        let result = CachedResult {
            body,
            content_type,
            rows_out,
            expires: Instant::now() + ttl,
        };
        let bytes = size(&key, &result);
        if bytes > self.capacity {
            return;
        }
        let mut inner = self.inner.lock().expect("result cache");
        if let Some(old) = inner.entries.put(key.clone(), result) {
            inner.bytes -= size(&key, &old);
        }
        inner.bytes += bytes;
        while inner.bytes > self.capacity {
            match inner.entries.pop_lru() {
                Some((k, v)) => inner.bytes -= size(&k, &v),
                None => break,
            }
        }
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("result cache");
        inner.entries.clear();
        inner.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &str) -> CacheKey {
        CacheKey {
            pipe: p.into(),
            version: "v1".into(),
            format: "json".into(),
            params: String::new(),
        }
    }

    #[test]
    fn bounded_in_bytes_and_time() {
        let cache = ResultCache::new(1200);
        let body = Bytes::from(vec![b'x'; 400]);
        cache.put(
            key("a"),
            body.clone(),
            "application/json",
            1,
            Duration::from_secs(60),
        );
        cache.put(
            key("b"),
            body.clone(),
            "application/json",
            1,
            Duration::from_secs(60),
        );
        assert!(cache.get(&key("a")).is_some());
        // A third entry pushes out the least recently used one (b).
        cache.put(
            key("c"),
            body.clone(),
            "application/json",
            1,
            Duration::from_secs(60),
        );
        assert!(cache.get(&key("b")).is_none());
        assert!(cache.get(&key("a")).is_some() && cache.get(&key("c")).is_some());
        // Too large for the whole cache: not kept.
        cache.put(
            key("d"),
            Bytes::from(vec![0; 2000]),
            "x",
            1,
            Duration::from_secs(60),
        );
        assert!(cache.get(&key("d")).is_none());
        // Expired entries are not answered.
        cache.put(key("e"), Bytes::from_static(b"1"), "x", 1, Duration::ZERO);
        assert!(cache.get(&key("e")).is_none());
        cache.clear();
        assert!(cache.get(&key("a")).is_none());
    }
}
