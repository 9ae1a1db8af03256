//! Sluice's own physical optimizer rules, run after DataFusion's.
//!
//! [`RowFilterWhereDynamic`]: Parquet row-level filtering ("pushdown_filters") only on
//! the scans that carry a dynamic filter. A hash join's build side (or a TopK) pushes a
//! dynamic filter into its probe-side scan; decoding only the rows that pass it is what
//! makes TPC-H q07, q17, q18, q19 and q20 30-45% faster. On scans with only static range
//! filters that keep a large share of the rows (q04, q06, q12, q15), the row filter costs
//! more than a vectorized filter after a plain decode: 40-60% slower. DataFusion's switch
//! is all or nothing, so Sluice leaves it off and turns it on scan by scan here
//! (BENCHMARKS.md, "Row filters only where a dynamic filter is").

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// Turns on row-level filtering for each Parquet scan whose predicate holds a dynamic
/// filter. Its static filters stay above the scan as well (DataFusion kept them there,
/// row-level pushdown being off), so the answer is the same either way. With
/// `datafusion.execution.parquet.pushdown_filters` on, every scan filters rows already
/// and the rule changes nothing.
#[derive(Debug, Default)]
pub struct RowFilterWhereDynamic;

impl PhysicalOptimizerRule for RowFilterWhereDynamic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if config.execution.parquet.pushdown_filters {
            return Ok(plan);
        }
        // Only the scans are replaced: the join that owns a dynamic filter keeps it
        // (`with_new_children` keeps it; the scan's predicate shares its state).
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some((config, parquet)) = exec.downcast_to_file_source::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            let dynamic = parquet.filter().is_some_and(|p| holds_dynamic_filter(&p));
            if !dynamic || parquet.table_parquet_options().global.pushdown_filters {
                return Ok(Transformed::no(node));
            }
            let source = parquet.clone().with_pushdown_filters(true);
            let config: FileScanConfig = FileScanConfigBuilder::from(config.clone())
                .with_source(Arc::new(source))
                .build();
            Ok(Transformed::yes(DataSourceExec::from_data_source(config)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "sluice_row_filter_where_dynamic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn holds_dynamic_filter(expr: &Arc<dyn PhysicalExpr>) -> bool {
    let mut found = false;
    expr.apply(|e| {
        if e.downcast_ref::<DynamicFilterPhysicalExpr>().is_some() {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visit cannot fail");
    found
}
