//! [`ClusteredAggregate`], a physical optimizer rule: a partial aggregate whose group key
//! the files keep together (rows of one key next to each other, as in files written in
//! key order) aggregates batch by batch and passes each batch's groups on at once,
//! instead of holding every group in one hash table.
//!
//! Why: TPC-H q18's `GROUP BY l_orderkey` has a group per four `lineitem` rows. In a
//! hash table that large, a row costs a cache miss; the partial aggregate's table grew
//! as large as the final one, so DataFusion skipped it and hashed all 6 M rows (60 M at
//! SF 10) into the final aggregate: 413 ms of CPU at SF 1, most of the query. The
//! files hold the rows in order-key order, so each batch of 8,192 rows holds whole
//! orders but for the two at its ends.
//!
//! How: the rule finds each partial `AggregateExec` with one of its group columns
//! coming, through projections, filters, repartitions and the probe side of hash
//! joins (which keep their input's row order within a partition), from a Parquet scan
//! column whose pages, in every row group of every file, hold non-overlapping ascending
//! ranges (the page index says so). It puts a [`ClusteredInput`] under the aggregate,
//! which passes the batches through and tells DataFusion they are ordered by the group
//! keys, so DataFusion runs its ordered partial aggregation: after each batch it emits
//! every group but the last one seen, and its table stays the size of a batch. The
//! claim is safe for that partial aggregate even where it is not quite true (a key
//! split between batches or pages): a partial aggregate may give a key several partial
//! rows, which the final aggregate above merges anyway. No other operator may rely on
//! it: an ordered partial aggregate declares its output ordered by its keys, and an
//! operator rebuilt over it recomputes its own properties from that (a final aggregate
//! right above would run in order and emit a key twice). So a [`ClusteredOutput`] above
//! the partial aggregate declares no ordering, and the claim ends there; the rule also
//! runs after every rule that plans around orderings. `explain` shows both.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::JoinType;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::parquet::file::page_index::column_index::ColumnIndexMetaData;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{
    EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr,
};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
    SendableRecordBatchStream,
};

use crate::store::snapshot::RunSnapshot;

/// Puts a [`ClusteredInput`] under each partial aggregate whose group key the files keep
/// together (see the module's documentation).
#[derive(Debug, Default)]
pub struct ClusteredAggregate;

impl PhysicalOptimizerRule for ClusteredAggregate {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if *aggregate.mode() != AggregateMode::Partial
                || *aggregate.input_order_mode() != InputOrderMode::Linear
                || !aggregate.group_expr().is_single()
                || aggregate.group_expr().is_empty()
                || aggregate.limit_options().is_some()
                || !aggregate.dynamic_expressions_produced().is_empty()
            {
                return Ok(Transformed::no(node));
            }
            let clustered = aggregate.group_expr().expr().iter().any(|(k, _)| {
                k.downcast_ref::<Column>()
                    .is_some_and(|c| column_is_clustered(config, aggregate.input(), c.index()))
            });
            if !clustered {
                return Ok(Transformed::no(node));
            }
            match over_clustered_input(aggregate)? {
                Some(rebuilt) => {
                    tracing::debug!(
                        groups = %aggregate.group_expr().expr().iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>().join(", "),
                        "a partial aggregate reads its groups clustered"
                    );
                    Ok(Transformed::yes(rebuilt))
                }
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_clustered_aggregate"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The partial `aggregate` over a [`ClusteredInput`] of its input, ordered by its group
/// keys, under a [`ClusteredOutput`], if DataFusion then plans it as an ordered
/// aggregation.
fn over_clustered_input(aggregate: &AggregateExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let keys = aggregate
        .group_expr()
        .expr()
        .iter()
        .map(|(k, _)| PhysicalSortExpr::new_default(Arc::clone(k)));
    let Some(ordering) = LexOrdering::new(keys) else {
        return Ok(None);
    };
    let input: Arc<dyn ExecutionPlan> =
        Arc::new(ClusteredInput::new(Arc::clone(aggregate.input()), ordering));
    let rebuilt = AggregateExec::try_new(
        AggregateMode::Partial,
        aggregate.group_expr().clone(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        input,
        aggregate.input_schema(),
    )?;
    if *rebuilt.input_order_mode() == InputOrderMode::Linear {
        return Ok(None);
    }
    Ok(Some(Arc::new(ClusteredOutput::new(Arc::new(rebuilt)))))
}

/// Whether column `index` of `plan`'s output comes, row order kept within each
/// partition, from a Parquet scan column that every file keeps clustered.
fn column_is_clustered(
    config: &ConfigOptions,
    plan: &Arc<dyn ExecutionPlan>,
    index: usize,
) -> bool {
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        return projection
            .expr()
            .get(index)
            .and_then(|p| p.expr.downcast_ref::<Column>())
            .is_some_and(|c| column_is_clustered(config, projection.input(), c.index()));
    }
    if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        let index = match filter.projection() {
            Some(projection) => match projection.get(index) {
                Some(i) => *i,
                None => return false,
            },
            None => index,
        };
        return column_is_clustered(config, filter.input(), index);
    }
    if let Some(repartition) = plan.downcast_ref::<RepartitionExec>() {
        return column_is_clustered(config, repartition.input(), index);
    }
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        // Output rows follow the probe (right) side batch by batch.
        if !matches!(
            join.join_type(),
            JoinType::Inner | JoinType::Right | JoinType::RightSemi | JoinType::RightAnti
        ) {
            return false;
        }
        let index = match join.projection.as_deref() {
            Some(projection) => match projection.get(index) {
                Some(i) => *i,
                None => return false,
            },
            None => index,
        };
        let left_columns = join.left().schema().fields().len();
        return match join.join_type() {
            JoinType::Inner | JoinType::Right => {
                index >= left_columns
                    && column_is_clustered(config, join.right(), index - left_columns)
            }
            _ => column_is_clustered(config, join.right(), index),
        };
    }
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        return scan_column_is_clustered(config, scan, index);
    }
    false
}

/// Whether output column `index` of a Parquet scan is clustered in every file it reads.
fn scan_column_is_clustered(config: &ConfigOptions, scan: &DataSourceExec, index: usize) -> bool {
    let Some(scan_config) = scan.data_source().downcast_ref::<FileScanConfig>() else {
        return false;
    };
    let schema = scan.schema();
    let Some(field) = schema.fields().get(index) else {
        return false;
    };
    let mut files = 0;
    let mut all = true;
    for file in scan_config.file_groups.iter().flat_map(|g| g.iter()) {
        files += 1;
        let footer = RunSnapshot::footer(config, &file.object_meta.location);
        if !footer.is_some_and(|f| file_keeps_clustered(&f, field.name())) {
            all = false;
            break;
        }
    }
    files > 0 && all
}

/// Whether in every row group of a file, the pages of column `name` hold non-overlapping
/// ascending ranges of values (by the page index).
fn file_keeps_clustered(footer: &ParquetMetaData, name: &str) -> bool {
    let schema = footer.file_metadata().schema_descr();
    let Some(leaf) = schema
        .columns()
        .iter()
        .position(|c| c.path().string() == name)
    else {
        return false;
    };
    let Some(groups) = footer.column_index() else {
        return false;
    };
    groups.len() == footer.num_row_groups()
        && groups
            .iter()
            .all(|columns| columns.get(leaf).is_some_and(pages_are_ascending))
}

/// Whether each page's values lie at or above the last page's (nulls aside).
fn pages_are_ascending(index: &ColumnIndexMetaData) -> bool {
    fn ascending<T: PartialOrd>(
        mins: impl Iterator<Item = Option<T>>,
        maxs: impl Iterator<Item = Option<T>>,
    ) -> bool {
        let mut last_max: Option<T> = None;
        for (min, max) in mins.zip(maxs) {
            let (Some(min), Some(max)) = (min, max) else {
                continue;
            };
            if last_max.as_ref().is_some_and(|m| *m > min) {
                return false;
            }
            last_max = Some(max);
        }
        true
    }
    match index {
        ColumnIndexMetaData::INT32(i) => ascending(i.min_values_iter(), i.max_values_iter()),
        ColumnIndexMetaData::INT64(i) => ascending(i.min_values_iter(), i.max_values_iter()),
        ColumnIndexMetaData::BYTE_ARRAY(i) => ascending(i.min_values_iter(), i.max_values_iter()),
        _ => false,
    }
}

/// Passes its input through, telling DataFusion that each partition is ordered by
/// `ordering`, for the partial aggregate right above it alone (see the module's
/// documentation).
#[derive(Debug)]
pub struct ClusteredInput {
    input: Arc<dyn ExecutionPlan>,
    ordering: LexOrdering,
    properties: Arc<PlanProperties>,
}

impl ClusteredInput {
    pub fn new(input: Arc<dyn ExecutionPlan>, ordering: LexOrdering) -> ClusteredInput {
        let eq = EquivalenceProperties::new_with_orderings(input.schema(), [ordering.clone()]);
        let mut properties = input.properties().as_ref().clone();
        properties.set_eq_properties(eq);
        ClusteredInput {
            input,
            ordering,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for ClusteredInput {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusteredInput: by=[{}]", self.ordering)
    }
}

impl ExecutionPlan for ClusteredInput {
    fn name(&self) -> &str {
        "ClusteredInput"
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(ClusteredInput::new(
            children.swap_remove(0),
            self.ordering.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

/// Passes the ordered partial aggregate's output through, declaring no ordering: the
/// claim of [`ClusteredInput`] is for that aggregate alone, not for what reads its
/// output (see the module's documentation).
#[derive(Debug)]
pub struct ClusteredOutput {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ClusteredOutput {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> ClusteredOutput {
        let mut properties = input.properties().as_ref().clone();
        properties.set_eq_properties(EquivalenceProperties::new(input.schema()));
        ClusteredOutput {
            input,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for ClusteredOutput {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusteredOutput")
    }
}

impl ExecutionPlan for ClusteredOutput {
    fn name(&self) -> &str {
        "ClusteredOutput"
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(ClusteredOutput::new(children.swap_remove(0))))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// The claim of order is safe where it is false: keys in no order at all, in small
    /// batches over two partitions, so a key's rows are spread over many batches and
    /// the partial aggregate emits it many times; the final aggregate merges them into
    /// the answers of the plan without it.
    #[tokio::test]
    async fn a_partial_aggregate_over_unordered_rows_still_gives_the_right_groups() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut partitions = Vec::new();
        for _ in 0..2 {
            let mut batches = Vec::new();
            for _ in 0..100 {
                let (mut k, mut v) = (Vec::new(), Vec::new());
                for i in 0..100 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    k.push((i % 17 != 0).then_some((x % 500) as i64));
                    v.push((i % 13 != 0).then_some((x >> 20) as i64 % 1000 - 500));
                }
                batches.push(
                    RecordBatch::try_new(
                        Arc::clone(&schema),
                        vec![Arc::new(Int64Array::from(k)), Arc::new(Int64Array::from(v))],
                    )
                    .unwrap(),
                );
            }
            partitions.push(batches);
        }
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        let table = MemTable::try_new(Arc::clone(&schema), partitions).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let sql = "SELECT k, sum(v) AS s, count(*) AS n, count(v) AS nv, avg(v) AS a, \
                   min(v) AS lo, max(v) AS hi FROM t GROUP BY k ORDER BY k";
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let forced = Arc::clone(&plan)
            .transform_up(|node| {
                let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                    return Ok(Transformed::no(node));
                };
                if *aggregate.mode() != AggregateMode::Partial {
                    return Ok(Transformed::no(node));
                }
                let rebuilt = over_clustered_input(aggregate)?.expect("an ordered aggregation");
                Ok(Transformed::yes(rebuilt))
            })
            .unwrap()
            .data;
        let text = displayable(forced.as_ref()).indent(true).to_string();
        assert!(text.contains("ClusteredInput: by=[k@0 ASC]"), "{text}");
        assert!(text.contains("ordering_mode=Sorted"), "{text}");
        let format = |batches: Vec<RecordBatch>| {
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
        };
        let expected = format(collect(plan, ctx.task_ctx()).await.unwrap());
        let got = format(collect(forced, ctx.task_ctx()).await.unwrap());
        assert_eq!(got, expected);
        assert_eq!(
            expected.lines().count(),
            501 + 4,
            "500 keys and the null key"
        );
    }

    /// The claim of order ends at the partial aggregate: a final aggregate right above
    /// it (one partition, nothing between them to drop the ordering) and rebuilt over
    /// it, as every node above a rewritten one is, still hashes its input. When the
    /// ordered partial aggregate's output ordering reached it, it ran in order too, and
    /// a key the partial aggregate emitted twice, far apart, came out twice.
    #[tokio::test]
    async fn a_final_aggregate_above_does_not_take_the_claim_of_order() {
        use datafusion::physical_plan::aggregates::PhysicalGroupBy;

        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        // Keys 0..10 in turn, so every batch of 4 holds keys the ones before held.
        let batches: Vec<RecordBatch> = (0..50)
            .map(|b| {
                let k: Vec<i64> = (0..4).map(|i| (b * 4 + i) % 10).collect();
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(Int64Array::from(k)),
                        Arc::new(Int64Array::from(vec![1i64; 4])),
                    ],
                )
                .unwrap()
            })
            .collect();
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        let table = MemTable::try_new(Arc::clone(&schema), vec![batches]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        // The partial aggregate of `SELECT k, count(v) FROM t GROUP BY k`, its input
        // the scan, under a final aggregate of its own.
        let plan = ctx
            .sql("SELECT k, count(v) AS n FROM t GROUP BY k")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut partial = None;
        plan.apply(|node| {
            if let Some(a) = node.downcast_ref::<AggregateExec>() {
                let single = AggregateExec::try_new(
                    AggregateMode::Partial,
                    a.group_expr().clone(),
                    a.aggr_expr().to_vec(),
                    a.filter_expr().to_vec(),
                    Arc::clone(a.input()),
                    a.input_schema(),
                )
                .unwrap();
                partial = Some(single);
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        let partial = partial.expect("an aggregate");
        let final_groups = PhysicalGroupBy::new_single(
            partial
                .output_group_expr()
                .into_iter()
                .zip(["k"])
                .map(|(e, n)| (e, n.to_string()))
                .collect(),
        );
        let partial: Arc<dyn ExecutionPlan> = Arc::new(partial);
        let final_aggregate: Arc<dyn ExecutionPlan> = Arc::new(
            AggregateExec::try_new(
                AggregateMode::Final,
                final_groups,
                partial
                    .downcast_ref::<AggregateExec>()
                    .unwrap()
                    .aggr_expr()
                    .to_vec(),
                vec![None],
                Arc::clone(&partial),
                partial
                    .downcast_ref::<AggregateExec>()
                    .unwrap()
                    .input_schema(),
            )
            .unwrap(),
        );
        let forced = Arc::clone(&final_aggregate)
            .transform_up(|node| {
                let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                    return Ok(Transformed::no(node));
                };
                if *aggregate.mode() != AggregateMode::Partial {
                    return Ok(Transformed::no(node));
                }
                let rebuilt = over_clustered_input(aggregate)?.expect("an ordered aggregation");
                Ok(Transformed::yes(rebuilt))
            })
            .unwrap()
            .data;
        let text = displayable(forced.as_ref()).indent(true).to_string();
        assert!(text.contains("ClusteredInput"), "{text}");
        let format = |batches: Vec<RecordBatch>| crate::testing::sorted_lines(&batches);
        let expected = format(collect(final_aggregate, ctx.task_ctx()).await.unwrap());
        let got = format(collect(forced, ctx.task_ctx()).await.unwrap());
        assert_eq!(expected.len(), 10 + 4, "ten keys: {expected:?}");
        assert_eq!(got, expected, "{text}");
    }

    #[test]
    fn pages_in_ascending_ranges_are_clustered() {
        use datafusion::parquet::arrow::ArrowWriter;
        use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
        use datafusion::parquet::file::reader::FileReader;
        use datafusion::parquet::file::serialized_reader::{
            ReadOptionsBuilder, SerializedFileReader,
        };
        // Two columns of 100,000 rows in pages of 1,000: `sorted` ascends, `shuffled`
        // does not.
        let schema = Arc::new(Schema::new(vec![
            Field::new("sorted", DataType::Int64, false),
            Field::new("shuffled", DataType::Int64, false),
        ]));
        let n = 100_000i64;
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i / 3))),
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i * 7919) % n))),
            ],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(1000)
            .set_write_batch_size(1000)
            .build();
        let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        let bytes = bytes::Bytes::from(writer.into_inner().unwrap());
        let options = ReadOptionsBuilder::new().with_page_index().build();
        let reader = SerializedFileReader::new_with_options(bytes, options).unwrap();
        let footer = reader.metadata();
        assert!(footer.column_index().is_some());
        assert!(file_keeps_clustered(footer, "sorted"));
        assert!(!file_keeps_clustered(footer, "shuffled"));
        assert!(!file_keeps_clustered(footer, "missing"));
    }
}
