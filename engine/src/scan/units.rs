//! A `system` sample read with the unit of every row: the column `sluice_sample_unit`
//! that estimates group by (`session::estimate`).
//!
//! Each file is read once, by the access plan of all the units it keeps, exactly as a
//! plain sampled run reads it; the row's unit is found from the file (a partition
//! column of the run's snapshot, `sluice_sample_file`) and the row's position in it
//! (DataFusion's `file_row_index()`, the Parquet reader's row numbers). An earlier
//! design gave every unit an entry of its own in the snapshot, a partition value each:
//! a 10% sample of 1 M rows opened 30 entries where a plain run opens 5, and opening
//! them (footer, pruning, bloom filters, each time) cost as much as reading them.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, UInt64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, Schema, SchemaRef, UInt64Type,
};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Result as DfResult, Statistics, exec_err};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TableProviderFilterPushDown, Volatility,
};
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;

use super::access::SampledUnit;
use crate::store::snapshot::UNIT_COLUMN;

/// The name the row's position in its file is read as, between the scan and the
/// projection that turns it into a unit.
const ROW_COLUMN: &str = "__sluice_file_row";

/// The units of one file a sample keeps: absolute row ranges, in file order, and the
/// number of each unit.
#[derive(Debug, Default)]
struct FileUnits {
    starts: Vec<u64>,
    ends: Vec<u64>,
    units: Vec<u64>,
}

/// Which unit each row of a sample is in, by the file's number (its `sluice_sample_file`
/// value) and the row's position in the file.
#[derive(Debug, Default)]
pub(crate) struct UnitIndex {
    files: Vec<FileUnits>,
}

impl UnitIndex {
    /// Adds the next file: its row groups' rows and the units it keeps with their
    /// numbers. Returns the file's number.
    pub(crate) fn add_file(&mut self, row_groups: &[u64], kept: &[(SampledUnit, u64)]) -> u64 {
        let mut first_rows = Vec::with_capacity(row_groups.len());
        let mut at = 0u64;
        for rows in row_groups {
            first_rows.push(at);
            at += rows;
        }
        let mut ranges: Vec<(u64, u64, u64)> = kept
            .iter()
            .map(|(u, number)| {
                let start = first_rows[u.row_group] + u.start;
                let len = u.len.min(row_groups[u.row_group].saturating_sub(u.start));
                (start, start + len, *number)
            })
            .collect();
        ranges.sort_unstable();
        self.files.push(FileUnits {
            starts: ranges.iter().map(|r| r.0).collect(),
            ends: ranges.iter().map(|r| r.1).collect(),
            units: ranges.iter().map(|r| r.2).collect(),
        });
        self.files.len() as u64 - 1
    }

    fn unit_of(&self, file: u64, row: u64) -> Option<u64> {
        let f = self.files.get(usize::try_from(file).ok()?)?;
        let i = f.starts.partition_point(|s| *s <= row).checked_sub(1)?;
        (row < f.ends[i]).then(|| f.units[i])
    }
}

/// `sluice_sample_unit_of(file, row)`: the unit row `row` of file number `file` was
/// sampled in. An error for a row in no unit: the scan read only the units' rows.
#[derive(Debug)]
struct UnitOf {
    index: Arc<UnitIndex>,
    signature: Signature,
}

// One function per registration of a sample: equal only to itself.
impl PartialEq for UnitOf {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.index, &other.index)
    }
}

impl Eq for UnitOf {}

impl Hash for UnitOf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.index) as usize).hash(state);
    }
}

impl ScalarUDFImpl for UnitOf {
    fn name(&self) -> &str {
        "sluice_sample_unit_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt64)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> DfResult<FieldRef> {
        // Every row read is in a unit (else the function fails): never NULL.
        Ok(Arc::new(Field::new(self.name(), DataType::UInt64, false)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let [file, row] = args.args.as_slice() else {
            return exec_err!("{} takes 2 arguments", self.name());
        };
        let row = cast(&row.to_array(n)?, &DataType::Int64)?;
        let row = row.as_primitive::<Int64Type>();
        // The file number is a partition value: a literal where the scan evaluates this
        // function itself (one file per batch), else text, plain or dictionary-encoded.
        let (one, each) = match file {
            ColumnarValue::Scalar(v) => match v.cast_to(&DataType::UInt64)? {
                datafusion::common::ScalarValue::UInt64(f) => (f, None),
                _ => return exec_err!("{}: a file number that is no number", self.name()),
            },
            ColumnarValue::Array(a) => (None, Some(cast(a, &DataType::UInt64)?)),
        };
        let each = each.as_ref().map(|a| a.as_primitive::<UInt64Type>());
        let mut out = UInt64Builder::with_capacity(n);
        for i in 0..n {
            let f = match each {
                Some(a) => a.is_valid(i).then(|| a.value(i)),
                None => one,
            };
            let (Some(f), true) = (f, row.is_valid(i)) else {
                return exec_err!("{}: a row without its file or position", self.name());
            };
            let r = row.value(i);
            match u64::try_from(r).ok().and_then(|r| self.index.unit_of(f, r)) {
                Some(unit) => out.append_value(unit),
                None => {
                    return exec_err!(
                        "{}: row {r} of sampled file {f} is in no unit of the sample",
                        self.name()
                    );
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// A source read as a `system` sample with the unit of every row. `inner` reads the
/// files with their access plans and the file number as its last column; this table
/// shows the unit there instead.
#[derive(Debug)]
pub(crate) struct UnitsTable {
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
    unit_of: Arc<ScalarUDF>,
    /// No file keeps a unit (a source with no rows): nothing to read.
    empty: bool,
}

impl UnitsTable {
    pub(crate) fn new(inner: Arc<dyn TableProvider>, index: UnitIndex) -> Self {
        let inner_schema = inner.schema();
        let mut fields: Vec<Field> = inner_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields.pop();
        fields.push(Field::new(UNIT_COLUMN, DataType::UInt64, false));
        let empty = index.files.is_empty();
        UnitsTable {
            empty,
            inner,
            schema: Arc::new(Schema::new(fields)),
            unit_of: Arc::new(ScalarUDF::new_from_impl(UnitOf {
                index: Arc::new(index),
                signature: Signature::any(2, Volatility::Immutable),
            })),
        }
    }

    fn unit_index(&self) -> usize {
        self.schema.fields().len() - 1
    }
}

fn names_unit(e: &Expr) -> bool {
    e.column_refs().iter().any(|c| c.name == UNIT_COLUMN)
}

#[async_trait]
impl TableProvider for UnitsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn statistics(&self) -> Option<Statistics> {
        // The same columns in the same places; the file number's statistics (none: a
        // sample's) stand for the unit's.
        self.inner.statistics()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // A filter on the unit stays above the scan; the others go to the files' scan.
        let others: Vec<&Expr> = filters.iter().copied().filter(|f| !names_unit(f)).collect();
        let mut answers = self.inner.supports_filters_pushdown(&others)?.into_iter();
        Ok(filters
            .iter()
            .map(|f| {
                if names_unit(f) {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    answers
                        .next()
                        .unwrap_or(TableProviderFilterPushDown::Unsupported)
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let unit = self.unit_index();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..=unit).collect(),
        };
        if self.empty {
            // The files' scan has no file to read the rows' positions from.
            let schema = Arc::new(self.schema.project(&wanted)?);
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let filters: Vec<Expr> = filters.iter().filter(|f| !names_unit(f)).cloned().collect();
        // The inner table has the same columns but the last: the file number.
        let scan = self
            .inner
            .scan(state, Some(&wanted), &filters, limit)
            .await?;
        let Some(unit_at) = wanted.iter().position(|i| *i == unit) else {
            return Ok(scan);
        };
        let scanned = scan.schema();
        let config = Arc::new(state.config_options().clone());
        // The row's position in its file, read by the scan itself (the reader's row
        // numbers): the projection that asks for it is pushed into the scan.
        let mut exprs: Vec<ProjectionExpr> = scanned
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| ProjectionExpr::new(Arc::new(Column::new(f.name(), i)), f.name()))
            .collect();
        let file_row = Arc::new(ScalarUDF::new_from_impl(
            datafusion::functions::core::file_row_index::FileRowIndexFunc::new(),
        ));
        exprs.push(ProjectionExpr::new(
            Arc::new(ScalarFunctionExpr::try_new(
                file_row,
                vec![],
                &scanned,
                config.clone(),
            )?),
            ROW_COLUMN,
        ));
        let with_rows = ProjectionExec::try_new(exprs, scan.clone())?;
        let Some(with_rows) = scan.try_swapping_with_projection(&with_rows)? else {
            // Sluice's own scan is a Parquet scan, which reads row numbers; say so
            // rather than blame DataFusion (`internal_err!`'s wording).
            return exec_err!(
                "the scan of a `system` sample with its units could not read the rows' positions in their files"
            );
        };
        let row_column = Arc::new(Column::new(ROW_COLUMN, scanned.fields().len()));
        let unit_expr = Arc::new(ScalarFunctionExpr::try_new(
            self.unit_of.clone(),
            vec![
                Arc::new(Column::new(scanned.field(unit_at).name(), unit_at)),
                row_column,
            ],
            &with_rows.schema(),
            config,
        )?);
        let out: Vec<ProjectionExpr> = scanned
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                if i == unit_at {
                    ProjectionExpr::new(unit_expr.clone(), UNIT_COLUMN)
                } else {
                    ProjectionExpr::new(Arc::new(Column::new(f.name(), i)), f.name())
                }
            })
            .collect();
        Ok(Arc::new(ProjectionExec::try_new(out, with_rows)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(row_group: usize, start: u64, len: u64) -> SampledUnit {
        SampledUnit {
            row_group,
            start,
            len,
        }
    }

    #[test]
    fn finds_each_rows_unit_by_file_and_position() {
        let mut index = UnitIndex::default();
        // Row groups of 100 and 50 rows: units [10, 20) of the first, [0, 50) of the
        // second (rows 100..150 of the file), listed out of order.
        let a = index.add_file(&[100, 50], &[(unit(1, 0, 50), 4), (unit(0, 10, 10), 3)]);
        let b = index.add_file(&[30], &[(unit(0, 0, 30), 5)]);
        assert_eq!((a, b), (0, 1));
        assert_eq!(index.unit_of(0, 10), Some(3));
        assert_eq!(index.unit_of(0, 19), Some(3));
        assert_eq!(index.unit_of(0, 20), None);
        assert_eq!(index.unit_of(0, 9), None);
        assert_eq!(index.unit_of(0, 100), Some(4));
        assert_eq!(index.unit_of(0, 149), Some(4));
        assert_eq!(index.unit_of(0, 150), None);
        assert_eq!(index.unit_of(1, 0), Some(5));
        assert_eq!(index.unit_of(2, 0), None);
    }

    #[test]
    fn the_function_takes_the_file_as_a_literal_or_as_text() {
        use datafusion::arrow::array::{Int64Array, StringArray, UInt64Array};
        use datafusion::common::ScalarValue;
        use datafusion::config::ConfigOptions;
        let mut index = UnitIndex::default();
        index.add_file(&[10], &[(unit(0, 0, 4), 0), (unit(0, 6, 4), 1)]);
        index.add_file(&[10], &[(unit(0, 2, 8), 2)]);
        let f = UnitOf {
            index: Arc::new(index),
            signature: Signature::any(2, Volatility::Immutable),
        };
        let call = |file: ColumnarValue, rows: Vec<i64>| {
            let n = rows.len();
            let args = vec![file, ColumnarValue::Array(Arc::new(Int64Array::from(rows)))];
            f.invoke_with_args(ScalarFunctionArgs {
                arg_fields: vec![
                    Arc::new(Field::new("f", DataType::Utf8, true)),
                    Arc::new(Field::new("r", DataType::Int64, true)),
                ],
                args,
                number_rows: n,
                return_field: Arc::new(Field::new("u", DataType::UInt64, false)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .map(|v| {
                let ColumnarValue::Array(a) = v else {
                    panic!("an array")
                };
                a.as_any()
                    .downcast_ref::<UInt64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
        };
        let literal = |v: &str| ColumnarValue::Scalar(ScalarValue::Utf8(Some(v.into())));
        assert_eq!(
            call(literal("0"), vec![0, 3, 6, 9]).unwrap(),
            vec![0, 0, 1, 1]
        );
        let text = ColumnarValue::Array(Arc::new(StringArray::from(vec!["0", "1", "1"])));
        assert_eq!(call(text, vec![2, 2, 9]).unwrap(), vec![0, 2, 2]);
        // A row the sample did not keep (row 4 of file 0, row 1 of file 1) is an error.
        let err = call(literal("0"), vec![4]).unwrap_err().to_string();
        assert!(
            err.contains("row 4 of sampled file 0 is in no unit"),
            "{err}"
        );
        assert!(call(literal("1"), vec![1]).is_err());
        assert!(call(literal("x"), vec![1]).is_err());
    }
}
