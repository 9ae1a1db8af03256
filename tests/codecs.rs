//! The vendored `parquet` (vendor/README.md): zstd contexts made when used and kept per
//! thread. Files of many zstd row groups read as their snappy copies do, on several
//! threads, and a corrupt zstd page fails its query without spoiling the next read.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use tempfile::TempDir;

const ROWS: i64 = 20_000;

fn write(path: &std::path::Path, compression: Compression) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("s", DataType::Utf8, true),
    ]));
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(200))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
    for chunk in 0..(ROWS / 1000) {
        let a: Vec<i64> = (chunk * 1000..(chunk + 1) * 1000).collect();
        let s: Vec<Option<String>> = a
            .iter()
            .map(|v| (v % 7 != 0).then(|| format!("key-{}", v % 613)))
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(a)),
                Arc::new(StringArray::from(s)),
            ],
        )
        .unwrap();
        writer.write(&batch).unwrap();
    }
    writer.close().unwrap();
}

async fn answer(ctx: &SessionContext, table: &str) -> datafusion::error::Result<String> {
    let batches = ctx
        .sql(&format!(
            "SELECT count(*) AS n, sum(a) AS total, count(s) AS keyed, count(DISTINCT s) AS keys, min(s) AS first, max(s) AS last FROM {table}"
        ))
        .await?
        .collect()
        .await?;
    Ok(datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zstd_files_of_many_row_groups_read_as_their_snappy_copies_do() {
    let dir = TempDir::new().unwrap();
    let zstd = dir.path().join("zstd.parquet");
    let snappy = dir.path().join("snappy.parquet");
    write(&zstd, Compression::ZSTD(ZstdLevel::try_new(3).unwrap()));
    write(&snappy, Compression::SNAPPY);
    let groups = SerializedFileReader::new(std::fs::File::open(&zstd).unwrap())
        .unwrap()
        .metadata()
        .num_row_groups();
    assert_eq!(groups, 100);

    // Several partitions, so several threads decode row groups of the same file.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(4));
    let opts = ParquetReadOptions::default();
    ctx.register_parquet("z", zstd.to_str().unwrap(), opts.clone())
        .await
        .unwrap();
    ctx.register_parquet("y", snappy.to_str().unwrap(), opts.clone())
        .await
        .unwrap();
    let want = answer(&ctx, "y").await.unwrap();
    assert!(
        want.contains(&format!("{}", ROWS * (ROWS - 1) / 2)),
        "{want}"
    );
    for _ in 0..3 {
        assert_eq!(answer(&ctx, "z").await.unwrap(), want);
    }

    // A corrupt zstd frame in the middle of the file: that query fails, the contexts it
    // used are not reused in a bad state, and the good file still reads the same.
    let mut bytes = std::fs::read(&zstd).unwrap();
    let meta = SerializedFileReader::new(std::fs::File::open(&zstd).unwrap())
        .unwrap()
        .metadata()
        .clone();
    let chunk = meta.row_group(50).column(1);
    let (start, len) = chunk.byte_range();
    // Past the page header, into the compressed frame.
    for b in &mut bytes[(start + len / 2) as usize..(start + len / 2 + 8) as usize] {
        *b ^= 0x5a;
    }
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, bytes).unwrap();
    ctx.register_parquet("bad", bad.to_str().unwrap(), opts)
        .await
        .unwrap();
    assert!(
        answer(&ctx, "bad").await.is_err(),
        "a corrupt page must fail"
    );
    for _ in 0..3 {
        assert_eq!(answer(&ctx, "z").await.unwrap(), want);
    }
}
