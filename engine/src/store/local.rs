//! A local folder as an object store: `object_store`'s `LocalFileSystem`, except that
//! the byte ranges a scan asks for (`get_ranges`: column chunks, footers) are read into
//! buffers that are not zeroed first.
//!
//! Why: `LocalFileSystem` sizes each range's buffer with zeros, then reads the file over
//! them. The zeroing was 2.8% of TPC-DS q25's CPU time on tpcgen-cli's files (`perf
//! record --call-graph dwarf`, `object_store::local::read_range` under `memset`), a pass
//! over every byte a scan reads that the read itself then overwrites.
//!
//! How: `Read::read_to_end` on the file limited to the range, into a buffer of the
//! range's capacity, reads straight into its spare capacity (std's `read_buf`, which
//! `File` implements without initialising it). Every range must come back whole; if one
//! does not (a file shorter than the range, a missing file, a bad path, any I/O error),
//! the request is asked again of `LocalFileSystem` itself, so every error is the one it
//! gives, worded as it words it.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};

/// Local files (see the module docs).
#[derive(Debug, Default)]
pub struct LocalFiles {
    inner: LocalFileSystem,
}

impl LocalFiles {
    pub fn new() -> Self {
        LocalFiles {
            inner: LocalFileSystem::new(),
        }
    }
}

impl fmt::Display for LocalFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalFiles({})", self.inner)
    }
}

/// Each range of `path`, read whole into a buffer that is not zeroed first; `None` if
/// any range cannot be read whole.
fn read_ranges(path: &Path, ranges: &[Range<u64>]) -> Option<Vec<Bytes>> {
    let mut file = File::open(path).ok()?;
    ranges
        .iter()
        .map(|range| {
            let len = range.end.checked_sub(range.start)?;
            let mut buf = Vec::with_capacity(usize::try_from(len).ok()?);
            file.seek(SeekFrom::Start(range.start)).ok()?;
            (&mut file).take(len).read_to_end(&mut buf).ok()?;
            (buf.len() as u64 == len).then(|| Bytes::from(buf))
        })
        .collect()
}

#[async_trait]
impl ObjectStore for LocalFiles {
    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if let Ok(path) = self.inner.path_to_filesystem(location) {
            // Blocking reads off the runtime's threads, as `LocalFileSystem` does them.
            let read = match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let wanted = ranges.to_vec();
                    runtime
                        .spawn_blocking(move || read_ranges(&path, &wanted))
                        .await
                        .ok()
                        .flatten()
                }
                Err(_) => read_ranges(&path, ranges),
            };
            if let Some(bytes) = read {
                return Ok(bytes);
            }
        }
        self.inner.get_ranges(location, ranges).await
    }

    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&ObjectPath>,
        offset: &ObjectPath,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range a `LocalFileSystem` reads, this store reads alike, and every range
    /// it refuses (past the end, reaching past it, a missing file), this one refuses
    /// with the same error.
    #[tokio::test]
    async fn ranges_read_and_fail_as_local_file_system_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("f.bin"), &bytes).unwrap();
        let file = ObjectPath::from_absolute_path(dir.path().join("f.bin")).unwrap();
        let missing = ObjectPath::from_absolute_path(dir.path().join("none.bin")).unwrap();
        let ours = LocalFiles::new();
        let theirs = LocalFileSystem::new();
        let cases: Vec<(&ObjectPath, Vec<Range<u64>>)> = vec![
            (&file, vec![0..100_000]),
            (&file, vec![10..20, 0..0, 99_999..100_000, 4_096..70_001]),
            (&file, vec![]),
            (&file, vec![0..10, 99_990..100_001]),
            (&file, vec![100_000..100_010]),
            (&file, vec![200_000..200_001]),
            (&missing, vec![0..10]),
        ];
        for (location, ranges) in cases {
            let got = ours.get_ranges(location, &ranges).await;
            let want = theirs.get_ranges(location, &ranges).await;
            match (got, want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got, want, "{ranges:?}");
                    for (range, got) in ranges.iter().zip(&got) {
                        let range = range.start as usize..range.end as usize;
                        assert_eq!(got.as_ref(), &bytes[range], "{ranges:?}");
                    }
                }
                (Err(got), Err(want)) => assert_eq!(got.to_string(), want.to_string()),
                (got, want) => panic!("{location} {ranges:?}: {got:?} against {want:?}"),
            }
        }
    }

    /// Outside a Tokio runtime the ranges are read on the caller's thread.
    #[test]
    fn ranges_read_outside_a_runtime() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.bin"), b"0123456789").unwrap();
        let file = ObjectPath::from_absolute_path(dir.path().join("f.bin")).unwrap();
        let got = futures::executor::block_on(LocalFiles::new().get_ranges(&file, &[2..5, 9..10]));
        assert_eq!(
            got.unwrap(),
            vec![Bytes::from_static(b"234"), Bytes::from_static(b"9")]
        );
    }
}
