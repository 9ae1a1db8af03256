//! A source's statistics for the logical optimizer (`join_order`), from the Parquet
//! footers its listing already holds: its rows (those a sample selects, when sampled),
//! each column's range and null count, and an estimate of the distinct values of the
//! string columns whose pages are all dictionary-encoded.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, Statistics};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::parquet::basic::{Encoding, PageType};
use datafusion::parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};

/// Bytes of a dictionary page that are its header, not its entries (a Thrift page header
/// with a dictionary header: about this much).
const PAGE_HEADER_BYTES: i64 = 16;

/// Computed on first use: only plans with joins to order ask.
#[derive(Debug)]
pub struct SourceStatistics {
    footers: Vec<Arc<ParquetMetaData>>,
    file_schema: SchemaRef,
    table_schema: SchemaRef,
    rows_selected: Option<u64>,
    computed: OnceLock<Option<Statistics>>,
}

impl SourceStatistics {
    /// `table_schema`: the file's columns, then the hive partition columns.
    pub fn new(
        footers: Vec<Arc<ParquetMetaData>>,
        file_schema: SchemaRef,
        table_schema: SchemaRef,
        rows_selected: Option<u64>,
    ) -> SourceStatistics {
        SourceStatistics {
            footers,
            file_schema,
            table_schema,
            rows_selected,
            computed: OnceLock::new(),
        }
    }

    pub fn get(&self) -> Option<Statistics> {
        self.computed.get_or_init(|| self.compute()).clone()
    }

    fn compute(&self) -> Option<Statistics> {
        let files = self
            .footers
            .iter()
            .map(|footer| {
                DFParquetMetadata::statistics_from_parquet_metadata(footer, &self.file_schema)
            })
            .collect::<datafusion::common::Result<Vec<_>>>()
            .ok()?;
        let mut stats = match Statistics::try_merge_iter(&files, &self.file_schema) {
            Ok(stats) if !files.is_empty() => stats,
            _ => Statistics::new_unknown(&self.file_schema),
        };
        for (i, field) in self.file_schema.fields().iter().enumerate() {
            if matches!(
                field.data_type(),
                DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
            ) && let Some(ndv) = self.dictionary_ndv(field.name())
            {
                stats.column_statistics[i].distinct_count = Precision::Inexact(ndv);
            }
        }
        // Hive partition columns follow the file's columns; nothing is known of them.
        let partitions = self.table_schema.fields().len() - self.file_schema.fields().len();
        stats
            .column_statistics
            .extend((0..partitions).map(|_| ColumnStatistics::new_unknown()));
        if let Some(rows) = self.rows_selected {
            stats.num_rows = Precision::Inexact(rows as usize);
        }
        Some(stats)
    }

    /// The distinct values of a string column, estimated from its dictionary pages: when
    /// every data page of every row group is dictionary-encoded, a row group's values are
    /// in its dictionary page, each as a 4-byte length and its bytes. The page's size
    /// (compressed: a lower bound) over an entry's size is at least its distinct values;
    /// the largest row group's count is the column's. `None` where a writer fell back
    /// to plain pages (too many values for a dictionary) or the footer does not say.
    fn dictionary_ndv(&self, column: &str) -> Option<usize> {
        let mut ndv = 0usize;
        for footer in &self.footers {
            let schema = footer.file_metadata().schema_descr();
            let leaf = (0..schema.num_columns()).find(|&i| {
                let path = schema.column(i).path().parts().to_vec();
                path.len() == 1 && path[0] == column
            })?;
            for row_group in footer.row_groups() {
                let chunk = row_group.column(leaf);
                ndv = ndv.max(chunk_dictionary_ndv(chunk)?);
            }
        }
        (ndv > 0).then_some(ndv)
    }
}

/// A column chunk's distinct values from its dictionary page (see `dictionary_ndv`).
fn chunk_dictionary_ndv(chunk: &ColumnChunkMetaData) -> Option<usize> {
    let dictionary = chunk.dictionary_page_offset()?;
    let dictionary_only =
        |e: Encoding| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY);
    let all_dictionary = match (
        chunk.page_encoding_stats_mask(),
        chunk.page_encoding_stats(),
    ) {
        (Some(mask), _) => {
            mask.is_only(Encoding::RLE_DICTIONARY) || mask.is_only(Encoding::PLAIN_DICTIONARY)
        }
        (None, Some(stats)) => stats
            .iter()
            .filter(|s| matches!(s.page_type, PageType::DATA_PAGE | PageType::DATA_PAGE_V2))
            .all(|s| dictionary_only(s.encoding)),
        (None, None) => false,
    };
    if !all_dictionary {
        return None;
    }
    let bytes = (chunk.data_page_offset() - dictionary - PAGE_HEADER_BYTES).max(1) as f64;
    let values = (chunk.num_values()
        - chunk
            .statistics()
            .and_then(|s| s.null_count_opt())
            .unwrap_or(0) as i64)
        .max(1);
    let average = match chunk.unencoded_byte_array_data_bytes() {
        Some(total) => total as f64 / values as f64,
        None => {
            let stats = chunk.statistics()?;
            let lengths = [stats.min_bytes_opt()?.len(), stats.max_bytes_opt()?.len()];
            (lengths[0] + lengths[1]) as f64 / 2.0
        }
    };
    let entries = (bytes / (4.0 + average)).ceil() as i64;
    Some(entries.clamp(1, values) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

    #[test]
    fn string_columns_count_their_dictionary_entries() {
        let rows = 20_000;
        let status: Vec<&str> = (0..rows).map(|i| ["F", "O", "P"][i % 3]).collect();
        let names: Vec<String> = (0..rows).map(|i| format!("Customer#{i:09}")).collect();
        let keys: Vec<i64> = (0..rows as i64).map(|i| 10 + i * 4).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("status", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("key", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(status)) as ArrayRef,
                Arc::new(StringArray::from(names)),
                Arc::new(Int64Array::from(keys)),
            ],
        )
        .unwrap();
        // A small dictionary limit: the unique names overflow it, as a large column would.
        let props = WriterProperties::builder()
            .set_dictionary_page_size_limit(16 * 1024)
            .build();
        let mut bytes = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut bytes, schema.clone(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let footer = SerializedFileReader::new(bytes::Bytes::from(bytes))
            .unwrap()
            .metadata()
            .clone();

        let stats = SourceStatistics::new(vec![Arc::new(footer)], schema.clone(), schema, None)
            .get()
            .expect("statistics");
        assert_eq!(stats.num_rows, Precision::Exact(rows));
        // Three statuses: the estimate is a count of that order, not the rows.
        let status = *stats.column_statistics[0]
            .distinct_count
            .get_value()
            .expect("a dictionary-encoded column");
        assert!((1..=12).contains(&status), "{status}");
        // The names fell back to plain pages: no estimate.
        assert_eq!(stats.column_statistics[1].distinct_count, Precision::Absent);
        // Integers: the range, which `join_order` reads (10 ..= 79,998).
        assert_eq!(
            stats.column_statistics[2].min_value,
            Precision::Exact(datafusion::common::ScalarValue::Int64(Some(10)))
        );
    }
}
