//! The vendored `parquet` (vendor/README.md): zstd contexts made when used and kept per
//! thread. Files of many zstd row groups read as their snappy copies do, on several
//! threads, and a corrupt zstd page fails its query without spoiling the next read.
//! Decimals stored as FIXED_LEN_BYTE_ARRAY (as pyarrow writes every decimal), decoded by
//! a loop per width, read as the values written, for every width of 1 to 16 bytes.
//! Nullable columns, whose valid values the reader moves into place run by run, read as
//! written for every pattern of NULLs, batch size and row selection. Dictionary indices
//! of every width from 1 to 17 bits, in RLE and bit-packed runs, read as written; an RLE
//! run header longer than a VLQ integer can be is a query error, not a panic.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::RowSelector;
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

/// `v` as a big-endian two's complement value of `width` bytes.
fn be_bytes(v: i128, width: usize) -> Vec<u8> {
    v.to_be_bytes()[16 - width..].to_vec()
}

/// The values of a FIXED_LEN_BYTE_ARRAY decimal column of `width` bytes and `precision`
/// digits: zero, ±1, the extremes of the precision, values that cross byte boundaries,
/// and NULLs (`None`).
fn decimal_values(width: usize, precision: u32) -> Vec<Option<i128>> {
    let extreme = 10i128.pow(precision) - 1;
    let mut values = vec![
        Some(0),
        Some(1),
        Some(-1),
        Some(extreme),
        Some(-extreme),
        None,
    ];
    let mut v: i128 = 7;
    for i in 0..400i128 {
        // A walk over the whole range, both signs, some values small and some large.
        v = v
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
            % extreme;
        let value = if i % 3 == 0 { v % 100_000 } else { v };
        values.push(if i % 11 == 5 {
            None
        } else if i % 2 == 0 {
            Some(value)
        } else {
            Some(-value)
        });
    }
    assert!(
        values
            .iter()
            .flatten()
            .all(|v| v.abs() <= extreme && width <= 16)
    );
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_len_byte_array_decimals_read_as_written_at_every_width() {
    use datafusion::arrow::array::{Array, Decimal128Array};
    use datafusion::arrow::compute::cast;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use datafusion::parquet::data_type::{ByteArray, FixedLenByteArray, FixedLenByteArrayType};
    use datafusion::parquet::file::writer::SerializedFileWriter;
    use datafusion::parquet::schema::parser::parse_message_type;

    let dir = TempDir::new().unwrap();
    let ctx = SessionContext::new();
    for width in 1..=16usize {
        // The most digits `width` bytes hold.
        let precision = ((8 * width - 1) as f64 * 2f64.log10()).floor() as u32;
        let values = decimal_values(width, precision);
        for dictionary in [true, false] {
            let path = dir.path().join(format!("d{width}-{dictionary}.parquet"));
            let schema = Arc::new(
                parse_message_type(&format!(
                    "message m {{ OPTIONAL FIXED_LEN_BYTE_ARRAY ({width}) d (DECIMAL({precision}, 2)); }}"
                ))
                .unwrap(),
            );
            let props = WriterProperties::builder()
                .set_dictionary_enabled(dictionary)
                .set_data_page_row_count_limit(64)
                .build();
            let file = std::fs::File::create(&path).unwrap();
            let mut writer = SerializedFileWriter::new(file, schema, Arc::new(props)).unwrap();
            let mut group = writer.next_row_group().unwrap();
            let mut column = group.next_column().unwrap().expect("one column");
            let present: Vec<FixedLenByteArray> = values
                .iter()
                .flatten()
                .map(|v| FixedLenByteArray::from(ByteArray::from(be_bytes(*v, width))))
                .collect();
            let levels: Vec<i16> = values.iter().map(|v| i16::from(v.is_some())).collect();
            column
                .typed::<FixedLenByteArrayType>()
                .write_batch(&present, Some(&levels), None)
                .unwrap();
            column.close().unwrap();
            group.close().unwrap();
            writer.close().unwrap();

            // The reader Sluice's scans use, in small batches (a batch boundary inside a
            // page, and pages inside a batch).
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
                    .unwrap()
                    .with_batch_size(100)
                    .build()
                    .unwrap();
            let mut got: Vec<Option<i128>> = Vec::new();
            for batch in reader {
                let column = cast(batch.unwrap().column(0), &DataType::Decimal128(38, 2)).unwrap();
                let column = column.as_any().downcast_ref::<Decimal128Array>().unwrap();
                got.extend((0..column.len()).map(|i| column.is_valid(i).then(|| column.value(i))));
            }
            assert_eq!(got, values, "width {width}, dictionary {dictionary}");

            // And through a query: what DataFusion counts and finds largest among them.
            let table = format!("d{width}_{dictionary}");
            ctx.register_parquet(
                &table,
                path.to_str().unwrap(),
                ParquetReadOptions::default(),
            )
            .await
            .unwrap();
            let batches = ctx
                .sql(&format!(
                    "SELECT count(d) AS n, CAST(max(d) AS VARCHAR) AS hi FROM {table}"
                ))
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let printed = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string();
            let count = values.iter().flatten().count();
            let nines = "9".repeat(precision as usize - 2);
            let hi = if nines.is_empty() {
                "0.99".to_string()
            } else {
                format!("{nines}.99")
            };
            assert!(
                printed.contains(&format!("| {count} ")) && printed.contains(&format!("| {hi} ")),
                "width {width}, dictionary {dictionary}: {printed}"
            );
        }
    }
}

/// The NULL patterns a nullable column's reader must place its values among: none, all,
/// alternating, long runs of each, a few percent scattered (as TPC-DS's generators
/// write), and NULLs only at the ends.
fn null_patterns(rows: usize) -> Vec<(&'static str, Vec<bool>)> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut scattered = Vec::with_capacity(rows);
    for _ in 0..rows {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        scattered.push(state % 100 >= 4);
    }
    vec![
        ("no nulls", vec![true; rows]),
        ("all nulls", vec![false; rows]),
        ("alternating", (0..rows).map(|i| i % 2 == 0).collect()),
        ("runs", (0..rows).map(|i| (i / 37) % 3 != 1).collect()),
        ("scattered", scattered),
        ("ends", (0..rows).map(|i| i > 70 && i + 70 < rows).collect()),
        // Runs of 1 to 40 valid rows, one NULL after each.
        ("every run length", {
            let mut mask = Vec::with_capacity(rows);
            let mut len = 1;
            while mask.len() < rows {
                mask.extend(std::iter::repeat_n(true, len));
                mask.push(false);
                len = len % 40 + 1;
            }
            mask.truncate(rows);
            mask
        }),
    ]
}

#[test]
fn nullable_columns_read_as_written_for_every_null_pattern() {
    use datafusion::arrow::array::{
        ArrayRef, DictionaryArray, Int32Array, StringViewArray, UInt16Array,
    };
    use datafusion::arrow::datatypes::UInt16Type;

    const N: usize = 5_000;
    let dir = TempDir::new().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("i32", DataType::Int32, true),
        Field::new("i64", DataType::Int64, true),
        Field::new("view", DataType::Utf8View, true),
        Field::new(
            "dict",
            DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8)),
            true,
        ),
    ]));
    for (name, valid) in null_patterns(N) {
        let value = |i: usize| valid[i].then_some(i);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from_iter(
                (0..N).map(|i| value(i).map(|v| v as i32 * 3 - 7)),
            )),
            Arc::new(Int64Array::from_iter(
                (0..N).map(|i| value(i).map(|v| v as i64 * -1_000_003)),
            )),
            Arc::new(StringViewArray::from_iter((0..N).map(|i| {
                value(i).map(|v| format!("a value long enough to be kept out of line {v}"))
            }))),
            Arc::new(DictionaryArray::<UInt16Type>::new(
                UInt16Array::from_iter((0..N).map(|i| value(i).map(|v| (v % 5) as u16))),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e"])),
            )),
        ];
        let written = RecordBatch::try_new(schema.clone(), columns).unwrap();
        for dictionary in [true, false] {
            let path = dir.path().join(format!("{name}-{dictionary}.parquet"));
            let props = WriterProperties::builder()
                .set_dictionary_enabled(dictionary)
                .set_data_page_row_count_limit(300)
                .set_write_batch_size(300)
                .set_max_row_group_row_count(Some(2_000))
                .build();
            let file = std::fs::File::create(&path).unwrap();
            let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
            writer.write(&written).unwrap();
            writer.close().unwrap();

            // Whole, in batches that end inside pages and span several; then through a
            // row selection, which skips levels between the reads.
            let selection = [
                RowSelector::select(101),
                RowSelector::skip(250),
                RowSelector::select(1_999),
                RowSelector::skip(1),
                RowSelector::select(N - 2_351),
            ];
            for batch_size in [97, 1_024, 8_192] {
                for selectors in [None, Some(&selection[..])] {
                    let context = format!("{name}, dictionary {dictionary}");
                    assert_reads_as_written(&path, &written, batch_size, selectors, &context);
                }
            }
        }
    }
}

/// Reads the file at `path` in batches of `batch_size`, whole or through `selectors`, and
/// checks every column against the rows of `written` that the selection keeps. Each
/// column read is cast to the type written first, so the comparison is of values.
fn assert_reads_as_written(
    path: &std::path::Path,
    written: &RecordBatch,
    batch_size: usize,
    selectors: Option<&[RowSelector]>,
    context: &str,
) {
    use datafusion::arrow::array::Array;
    use datafusion::arrow::compute::{cast, concat, concat_batches};
    use datafusion::parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection};

    let mut builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .with_batch_size(batch_size);
    let mut expected = written.clone();
    if let Some(selectors) = selectors {
        builder = builder.with_row_selection(RowSelection::from(selectors.to_vec()));
        let (mut kept, mut at) = (Vec::new(), 0);
        for selector in selectors {
            if !selector.skip {
                kept.push(written.slice(at, selector.row_count));
            }
            at += selector.row_count;
        }
        assert_eq!(
            at,
            written.num_rows(),
            "{context}: the selection covers every row"
        );
        expected = concat_batches(&written.schema(), &kept).unwrap();
    }
    let batches: Vec<RecordBatch> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    for (c, field) in written.schema().fields().iter().enumerate() {
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
        let got = cast(&concat(&parts).unwrap(), field.data_type()).unwrap();
        assert_eq!(
            got.as_ref(),
            expected.column(c).as_ref(),
            "{context}, batch {batch_size}, selected {}: column {}",
            selectors.is_some(),
            field.name()
        );
    }
}

/// A dictionary-encoded column whose indices are `bit_width` bits wide, in runs of 1 to
/// 24 values: runs of 8 or more are RLE runs (one header and one value each, the value
/// read through `BitReader::get_aligned_u64`), shorter ones bit-packed. A nullable copy
/// of it goes through the same decoder behind definition levels.
fn dictionary_runs(bit_width: u32) -> (Vec<i64>, Vec<Option<i32>>) {
    let distinct = (1u64 << (bit_width - 1)) + 1;
    let mut state: u64 = 0x2545_f491_4f6c_dd1d ^ bit_width as u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Every value once, so the dictionary has `distinct` entries; then the runs.
    let mut keys: Vec<u64> = (0..distinct).collect();
    while keys.len() < distinct as usize + 12_000 {
        let (len, key) = (1 + next() % 24, next() % distinct);
        keys.extend(std::iter::repeat_n(key, len as usize));
    }
    let values = keys.iter().map(|&k| k as i64 * 1_000_003 - 5).collect();
    let nullable = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| (i % 11 != 3).then_some(k as i32 - 9))
        .collect();
    (values, nullable)
}

#[test]
fn dictionary_runs_read_as_written_at_every_index_width() {
    use datafusion::arrow::array::{ArrayRef, Int32Array};

    let dir = TempDir::new().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("v", DataType::Int64, false),
        Field::new("n", DataType::Int32, true),
    ]));
    for bit_width in 1..=17 {
        let (values, nullable) = dictionary_runs(bit_width);
        let rows = values.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(values)),
            Arc::new(Int32Array::from(nullable)),
        ];
        let written = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let path = dir.path().join(format!("w{bit_width}.parquet"));
        // Pages of 1,000 rows: many pages end in an RLE run whose value sits in the
        // last bytes of the page, where fewer than 8 bytes remain.
        let props = WriterProperties::builder()
            .set_data_page_row_count_limit(1_000)
            .set_write_batch_size(1_000)
            .build();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
        writer.write(&written).unwrap();
        writer.close().unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        for c in 0..2 {
            let chunk = reader.metadata().row_group(0).column(c);
            assert!(
                chunk.dictionary_page_offset().is_some(),
                "width {bit_width}, column {c}: not dictionary-encoded"
            );
        }

        let selection = [
            RowSelector::select(777),
            RowSelector::skip(1_501),
            RowSelector::select(rows - 2_278),
        ];
        for selectors in [None, Some(&selection[..])] {
            let context = format!("width {bit_width}");
            assert_reads_as_written(&path, &written, 1_003, selectors, &context);
        }
    }
}

/// A data page whose dictionary indices start with an RLE run header longer than a VLQ
/// integer can be: the vendored reader said so by `assert!`, a panic in the scan's
/// thread; now the query fails with the reason, and the next read works.
#[test]
fn an_overlong_rle_run_header_is_an_error_not_a_panic() {
    use crate::common::TestProject;

    let p = TestProject::with_files(
        "[environments.staging]\ndata = \"data/staging\"\n[sources.keys]\n",
        &[],
    );
    std::fs::create_dir_all(p.store("staging").join("keys")).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int32, false)]));
    // Ten runs of 100 rows, of two alternating values: the page holds the index bit
    // width (1) and then run headers of 100 values (0xC8 0x01), each with its value.
    let keys: Vec<i32> = (0..1_000).map(|i| 40 + (i / 100) % 2).collect();
    let props = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema.clone(), Some(props)).unwrap();
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(datafusion::arrow::array::Int32Array::from(keys))],
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let good = p.store("staging").join("keys/good.parquet");
    std::fs::write(&good, &bytes).unwrap();
    let (out, _) = p.expect_exit(&["query", "select sum(k) as s from keys"], 0);
    assert!(out.contains("40500"), "{out}");

    let runs = [0x01, 0xC8, 0x01, 0x00, 0xC8, 0x01, 0x01];
    let at = bytes
        .windows(runs.len())
        .position(|w| w == runs)
        .expect("the page's RLE runs");
    // Eleven continuation bytes where the first header was.
    bytes[at + 1..at + 12].fill(0xFF);
    let bad = p.store("staging").join("keys/bad.parquet");
    std::fs::write(&bad, &bytes).unwrap();
    let (_, err) = p.expect_exit(&["query", "select sum(k) as s from keys"], 1);
    assert!(err.contains("environment `staging`"), "{err}");
    assert!(err.contains("VLQ integer longer than 10 bytes"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // Nothing was spoiled for the next read.
    std::fs::remove_file(&bad).unwrap();
    let (out, _) = p.expect_exit(&["query", "select sum(k) as s from keys"], 0);
    assert!(out.contains("40500"), "{out}");
}
