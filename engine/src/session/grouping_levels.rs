//! A local run's `ROLLUP`, `CUBE` and `GROUPING SETS` computed set by set, each set
//! from the fewest rows of a finer set already computed.
//!
//! Why: DataFusion computes grouping sets by repeating every input row once per set into
//! one hash aggregate keyed by all the sets' columns (NULL where a set lacks one) and a
//! grouping id. TPC-DS q67 rolls up 540 K rows by eight columns: 4.9 M rows hashed on
//! nine keys, most of its time (0.97 s, 1.9× DuckDB's). The optimizer's
//! `PreAggregateGroupingSets` aggregates by every column first, which pays when that
//! leaves few groups (q22) and not when the finest groups are nearly as many as the rows
//! (q67's 342 K), and it leaves a decimal's `sum` alone.
//!
//! How: the set of every column (`ROLLUP` and `CUBE` have it) is aggregated from the
//! input, each output as parts: a count, `min`, `max`, `sum`, or an integer average's
//! sum and count. Each other set, from most columns to fewest, is aggregated from the
//! held set with fewest rows that has all its columns (a rollup's next level from the one
//! before), combining the parts: counts and sums summed, `min` of `min`s, `max` of
//! `max`es. Then each set's rows are given NULL in the columns it lacks, its grouping id
//! and its `grouping()` values, and held in one table, which the plan scans where the
//! aggregate was. Its rows are held as a shared node's are (`shared_nodes`), in the same
//! budget; the sets are given back once the answer is held. When they outgrow the
//! budget, the aggregate is left to DataFusion.
//!
//! Sound: each group of a set is the union of the groups of any finer set with its
//! values (the finer set's columns include the set's), and each part combines over a
//! union: counts and sums add (an integer sum wraps as DataFusion's does; a decimal sum
//! is exact and is cast back to its type, which errors where DataFusion's would answer
//! a value beyond that type's precision), `min` and `max` are those of the parts, and
//! an integer average is the sum of the values as `DOUBLE` (exact below 2^53) over their
//! count, as DataFusion's is; a float's sum or average, whose rounding would change, and
//! `DISTINCT`, `FILTER` or ordered aggregates are left to DataFusion. A set with no
//! columns over no rows gives one row (count 0, the rest NULL) both ways. Only an
//! aggregate whose sets share no column is computed ahead: DataFusion can push a filter
//! above it below it only on a column every set has. Its input is computed once either
//! way; one with a volatile function, an outer reference or an unbound parameter
//! (`shared_nodes::computable_ahead`) is left alone, as is a run that keeps its plans
//! (a long-lived session's, which computes its shared nodes again each run).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, ExprSchema, ScalarValue, TableReference};
use datafusion::datasource::provider_as_source;
use datafusion::error::Result;
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::functions::core::expr_fn::coalesce;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::GroupingSet;
use datafusion::logical_expr::{
    Aggregate, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Projection, cast, col, lit,
};
use datafusion::prelude::{DataFrame, SessionContext};

use crate::optimizer::two_phase::{plain, unfiltered};
use crate::session::shared_nodes::{
    SharedNode, computable_ahead, compute_rows, replace_everywhere,
};

/// The most sets computed one by one (a `CUBE` of six columns).
const MAX_SETS: usize = 64;

/// `plan` with each aggregate over grouping sets that this computes ahead (see the
/// module's documentation) computed, within `budget`, and scanned where it was: the
/// plan to run, and the rows held for it.
pub async fn compute_levels(
    ctx: &SessionContext,
    mut plan: LogicalPlan,
    pool: &Arc<dyn MemoryPool>,
    budget: usize,
) -> Result<(LogicalPlan, Vec<SharedNode>)> {
    let mut held: Vec<SharedNode> = Vec::new();
    let mut left_alone: Vec<LogicalPlan> = Vec::new();
    while let Some((aggregate, levels)) = next_aggregate(&plan, &left_alone) {
        let LogicalPlan::Aggregate(agg) = &aggregate else {
            unreachable!("next_aggregate gives aggregates");
        };
        let used: usize = held.iter().map(|s| s.bytes).sum();
        let n = held.len() + left_alone.len() + 1;
        let Some((replacement, node)) =
            compute(ctx, n, agg, &levels, pool, budget.saturating_sub(used)).await?
        else {
            left_alone.push(aggregate);
            continue;
        };
        // Every copy (a `WITH` query's, read twice) reads the same rows.
        plan = replace_everywhere(plan, &aggregate, &replacement)?;
        held.push(node);
    }
    Ok((plan, held))
}

/// The innermost aggregate of `plan` (subqueries included) that this computes ahead,
/// but those in `left_alone`, with how.
fn next_aggregate(plan: &LogicalPlan, left_alone: &[LogicalPlan]) -> Option<(LogicalPlan, Levels)> {
    let mut found = None;
    // Walked parents first, so the last found holds no other. The closure never fails.
    let _ = plan.apply_with_subqueries(|p| {
        if let LogicalPlan::Aggregate(agg) = p
            && !left_alone.contains(p)
            && let Some(levels) = levels(agg)
            && computable_ahead(p)
        {
            found = Some((p.clone(), levels));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// How an aggregate over grouping sets is computed set by set.
struct Levels {
    /// Its group keys: every expression of its sets, once, in DataFusion's order (that
    /// of its output's group columns and of the grouping id's bits).
    keys: Vec<Expr>,
    /// Each set, as positions in `keys`, in the aggregate's order.
    sets: Vec<BTreeSet<usize>>,
    /// The aggregates the sets are computed with: each over the input for the finest
    /// set (`first`), then over a finer set's rows (`then`, reading the column `name`).
    parts: Vec<Part>,
    /// Each output, from the parts.
    outputs: Vec<Output>,
}

struct Part {
    name: String,
    first: Expr,
    then: Expr,
}

enum Output {
    /// A count: its part, 0 where a set with no columns had no rows.
    Count(String),
    /// `min`, `max` or a sum: its part as it is.
    Part(String),
    /// An integer's average: its sum over its count.
    Average { sum: String, count: String },
    /// `grouping(…)` of these keys: a bit for each, set where the set lacks it.
    Grouping(Vec<usize>),
}

/// How `agg` is computed set by set, if it is (see the module's documentation).
fn levels(agg: &Aggregate) -> Option<Levels> {
    let [Expr::GroupingSet(grouping)] = agg.group_expr.as_slice() else {
        return None;
    };
    let keys: Vec<Expr> = grouping.distinct_expr().into_iter().cloned().collect();
    let position = |e: &Expr| keys.iter().position(|k| k == e);
    let sets: Vec<BTreeSet<usize>> = match grouping {
        GroupingSet::Rollup(exprs) => (0..=exprs.len())
            .rev()
            .map(|n| exprs[..n].iter().filter_map(position).collect())
            .collect(),
        GroupingSet::Cube(exprs) => (0..1u64 << exprs.len().min(16))
            .rev()
            .map(|mask| {
                (0..exprs.len())
                    .filter(|i| mask & (1 << (exprs.len() - 1 - i)) != 0)
                    .collect()
            })
            .collect(),
        GroupingSet::GroupingSets(sets) => sets
            .iter()
            .map(|s| s.iter().filter_map(position).collect())
            .collect(),
    };
    // A key twice (`ROLLUP (a, a)`), a set twice (DataFusion numbers the copies), more
    // sets than are worth a union (a `CUBE` of seven columns): left to DataFusion, as is
    // a set of sets without the finest, or with a column in every set (see the module's
    // documentation).
    let distinct: BTreeSet<&BTreeSet<usize>> = sets.iter().collect();
    let every = |s: &BTreeSet<usize>| s.len() == keys.len();
    let common = (0..keys.len()).any(|k| sets.iter().all(|s| s.contains(&k)));
    if keys.iter().enumerate().any(|(i, k)| position(k) != Some(i))
        || distinct.len() != sets.len()
        || keys.len() > 16
        || sets.len() > MAX_SETS
        || !sets.iter().any(every)
        || common
        || agg.schema.fields().len() != keys.len() + 1 + agg.aggr_expr.len()
    {
        return None;
    }
    let input = agg.input.schema();
    let mut parts = Vec::new();
    let mut outputs = Vec::new();
    for (i, expr) in agg.aggr_expr.iter().enumerate() {
        let f = unfiltered(expr)?;
        if f.params.distinct {
            return None;
        }
        let output_type = agg.schema.field(keys.len() + 1 + i).data_type();
        let name = format!("__sluice_part_{i}");
        let args = f.params.args.clone();
        let output = match f.func.name() {
            "count" => {
                parts.push(Part {
                    name: name.clone(),
                    first: plain(count_udaf(), args),
                    then: plain(sum_udaf(), vec![col(&name)]),
                });
                Output::Count(name)
            }
            "min" | "max" => {
                parts.push(Part {
                    name: name.clone(),
                    first: plain(Arc::clone(&f.func), args),
                    then: plain(Arc::clone(&f.func), vec![col(&name)]),
                });
                Output::Part(name)
            }
            "sum"
                if output_type.is_integer() || matches!(output_type, DataType::Decimal128(..)) =>
            {
                parts.push(Part {
                    name: name.clone(),
                    first: plain(sum_udaf(), args),
                    // A decimal's sum of sums is wider: cast back, as every set's is.
                    then: cast(plain(sum_udaf(), vec![col(&name)]), output_type.clone()),
                });
                Output::Part(name)
            }
            "avg" if integer_argument(&args, input)? => {
                let count = format!("{name}_count");
                parts.push(Part {
                    name: name.clone(),
                    first: plain(sum_udaf(), vec![cast(args[0].clone(), DataType::Float64)]),
                    then: plain(sum_udaf(), vec![col(&name)]),
                });
                parts.push(Part {
                    name: count.clone(),
                    first: plain(count_udaf(), args),
                    then: plain(sum_udaf(), vec![col(&count)]),
                });
                Output::Average { sum: name, count }
            }
            "grouping" => Output::Grouping(args.iter().map(position).collect::<Option<_>>()?),
            _ => return None,
        };
        outputs.push(output);
    }
    Some(Levels {
        keys,
        sets,
        parts,
        outputs,
    })
}

/// Whether `args` is one integer expression.
fn integer_argument(args: &[Expr], input: &DFSchema) -> Option<bool> {
    let [arg] = args else {
        return Some(false);
    };
    Some(arg.get_type(input as &dyn ExprSchema).ok()?.is_integer())
}

fn key_name(k: usize) -> String {
    format!("__sluice_key_{k}")
}

/// A scan of `table` under `name`.
fn scan(name: &str, table: &Arc<MemTable>) -> Result<LogicalPlan> {
    LogicalPlanBuilder::scan(name, provider_as_source(Arc::clone(table) as _), None)?.build()
}

/// Computes `agg`, the `n`th of its plan, set by set within `budget`: the plan that
/// scans its rows in its place, and the rows held; `None` when they outgrow the budget.
async fn compute(
    ctx: &SessionContext,
    n: usize,
    agg: &Aggregate,
    levels: &Levels,
    pool: &Arc<dyn MemoryPool>,
    budget: usize,
) -> Result<Option<(LogicalPlan, SharedNode)>> {
    // From most columns to fewest; the first has every one.
    let mut order: Vec<usize> = (0..levels.sets.len()).collect();
    order.sort_by_key(|&s| std::cmp::Reverse(levels.sets[s].len()));
    // Each set's rows, as they are computed (its keys, then its parts).
    let mut computed: Vec<Option<(Arc<MemTable>, SharedNode)>> =
        (0..levels.sets.len()).map(|_| None).collect();
    let mut used = 0;
    let mut source_plan = None;
    let name = format!("grouping sets {n}");
    for &s in &order {
        let set = &levels.sets[s];
        let groups: Vec<Expr>;
        let aggregates: Vec<Expr>;
        let input = match order
            .iter()
            .filter_map(|&t| Some((t, computed[t].as_ref()?)))
            .filter(|(t, _)| set.is_subset(&levels.sets[*t]))
            .min_by_key(|(_, (_, node))| node.rows)
        {
            None => {
                groups = set
                    .iter()
                    .map(|&k| levels.keys[k].clone().alias(key_name(k)))
                    .collect();
                aggregates = levels
                    .parts
                    .iter()
                    .map(|p| p.first.clone().alias(&p.name))
                    .collect();
                Arc::clone(&agg.input)
            }
            Some((t, (table, _))) => {
                groups = set.iter().map(|&k| col(key_name(k))).collect();
                aggregates = levels
                    .parts
                    .iter()
                    .map(|p| p.then.clone().alias(&p.name))
                    .collect();
                Arc::new(scan(&format!("__sluice_set_{t}"), table)?)
            }
        };
        let plan = LogicalPlan::Aggregate(Aggregate::try_new(input, groups, aggregates)?);
        let set_name = format!("{name}, set {}", s + 1);
        let held = hold(
            ctx,
            &set_name,
            plan,
            None,
            pool,
            budget.saturating_sub(used),
        );
        let Some((table, node)) = held.await? else {
            return Ok(None);
        };
        used += node.bytes;
        // What the finest set scanned is what the aggregate scanned.
        source_plan.get_or_insert_with(|| Arc::clone(&node.plan));
        computed[s] = Some((Arc::new(table), node));
    }
    // The answer: each set's rows as the aggregate gives them, in one table whose
    // columns are named by position (the aggregate's names may repeat: `t1.a`, `t2.a`).
    let schema = Arc::new(Schema::new(
        agg.schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), f.is_nullable()))
            .collect::<Vec<_>>(),
    ));
    let mut answer: Option<LogicalPlanBuilder> = None;
    for (s, set) in levels.sets.iter().enumerate() {
        let (table, _) = computed[s].as_ref().expect("every set is computed");
        let values = set_values(levels, set)
            .into_iter()
            .zip(schema.fields())
            .map(|(value, f)| cast(value, f.data_type().clone()).alias(f.name()))
            .collect::<Vec<_>>();
        let rows =
            LogicalPlanBuilder::from(scan(&format!("__sluice_set_{s}"), table)?).project(values)?;
        answer = Some(match answer {
            None => rows,
            Some(before) => before.union(rows.build()?)?,
        });
    }
    let answer = answer.expect("a grouping set").build()?;
    let held = hold(
        ctx,
        &name,
        answer,
        Some(Arc::clone(&schema)),
        pool,
        budget.saturating_sub(used),
    );
    let Some((table, mut node)) = held.await? else {
        return Ok(None);
    };
    // The sets' rows are given back (dropped with `computed`).
    node.plan = source_plan.expect("a grouping set");
    // The table's columns under the aggregate's names and qualifiers.
    let table_name = format!("__sluice_grouping_sets_{n}");
    let exprs = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let (qualifier, field) = agg.schema.qualified_field(i);
            Expr::Column(datafusion::common::Column::new(
                Some(TableReference::bare(table_name.clone())),
                f.name(),
            ))
            .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let replacement = LogicalPlan::Projection(Projection::try_new(
        exprs,
        Arc::new(scan(&table_name, &Arc::new(table))?),
    )?);
    Ok(Some((replacement, node)))
}

/// Runs `plan` (`name` in logs) into rows held within `budget` (under `schema`, else
/// its own), or `None` when they outgrow it.
async fn hold(
    ctx: &SessionContext,
    name: &str,
    plan: LogicalPlan,
    schema: Option<SchemaRef>,
    pool: &Arc<dyn MemoryPool>,
    budget: usize,
) -> Result<Option<(MemTable, SharedNode)>> {
    let df = DataFrame::new(ctx.state(), plan);
    compute_rows(ctx, name, 1, df, schema, pool, budget, false).await
}

/// The aggregate's output columns for the rows of `set` (its keys, then its parts): a
/// key the set lacks is NULL, then the grouping id, then each output.
fn set_values(levels: &Levels, set: &BTreeSet<usize>) -> Vec<Expr> {
    let lacks = |k: usize| !set.contains(&k);
    let mut values = Vec::new();
    for k in 0..levels.keys.len() {
        values.push(if lacks(k) {
            lit(ScalarValue::Null)
        } else {
            col(key_name(k))
        });
    }
    // DataFusion's grouping id: a bit per key, the first key's highest, set where lacked.
    let id = (0..levels.keys.len()).fold(0u64, |id, k| (id << 1) | u64::from(lacks(k)));
    values.push(lit(id));
    for output in &levels.outputs {
        values.push(match output {
            Output::Count(part) => coalesce(vec![col(part), lit(0i64)]),
            Output::Part(part) => col(part),
            Output::Average { sum, count } => col(sum) / cast(col(count), DataType::Float64),
            Output::Grouping(args) => {
                let bits = args
                    .iter()
                    .fold(0i64, |bits, &k| (bits << 1) | i64::from(lacks(k)));
                lit(bits)
            }
        });
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionConfig;

    async fn session() -> SessionContext {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(3));
        for sql in [
            crate::testing::GROUPING_TABLE,
            "CREATE TABLE empty AS SELECT * FROM t WHERE false",
        ] {
            ctx.sql(sql).await.unwrap().collect().await.unwrap();
        }
        ctx
    }

    /// The rows of `df`, sorted, and its schema.
    async fn rows(df: DataFrame) -> (String, String) {
        let schema = format!("{:?}", df.schema());
        let lines = crate::testing::sorted_lines(&df.collect().await.unwrap());
        (lines.join("\n"), schema)
    }

    /// `sql`'s rows and schema computed set by set within `budget`, how many aggregates
    /// were, and the pool's use once the run is over.
    async fn by_sets(ctx: &SessionContext, sql: &str, budget: usize) -> (String, String, usize) {
        let pool = Arc::clone(&ctx.runtime_env().memory_pool);
        let plan = ctx.sql(sql).await.unwrap().logical_plan().clone();
        let (plan, held) = compute_levels(ctx, plan, &pool, budget).await.unwrap();
        let (rows, schema) = rows(DataFrame::new(ctx.state(), plan)).await;
        let computed = held.len();
        drop(held);
        assert_eq!(pool.reserved(), 0, "{sql}: the rows are given back");
        (rows, schema, computed)
    }

    #[tokio::test]
    async fn answers_as_datafusion_does() {
        let ctx = session().await;
        let cases = [
            // Counts, min and max of strings, integer and decimal sums, integer averages.
            "SELECT a, b, c, count(*) AS n, count(q), min(a), max(q), sum(q), sum(d), avg(q) \
             FROM t GROUP BY ROLLUP (a, b, c)",
            "SELECT a, b, sum(d * q), grouping(a), grouping(b), grouping(a, b), grouping(b, a) \
             FROM t GROUP BY CUBE (a, b)",
            // Expressions as keys, explicit sets with the finest.
            "SELECT upper(a) AS u, b % 2 AS p, count(*), sum(q) FROM t \
             GROUP BY GROUPING SETS ((upper(a), b % 2), (upper(a)), (b % 2), ())",
            // No rows: the set with no columns gives one row.
            "SELECT a, b, count(*), sum(d), avg(q), min(a) FROM empty GROUP BY ROLLUP (a, b)",
            // A filter below, a condition on the groups above, a limit.
            "SELECT a, b, avg(q) AS qoh FROM t WHERE c = 1 GROUP BY ROLLUP (a, b) \
             HAVING avg(q) > 400 ORDER BY qoh, a, b LIMIT 5",
            // Two in one plan, one in a `WITH` query read twice.
            "WITH r AS (SELECT a, b, sum(q) AS s FROM t GROUP BY ROLLUP (a, b)) \
             SELECT x.a, x.b, x.s AS xs, y.s AS ys FROM r x JOIN r y ON x.a = y.a AND x.b IS NULL \
             UNION ALL SELECT c, NULL, sum(q), NULL FROM t GROUP BY ROLLUP (c)",
            // A rollup over a rollup's groups.
            "SELECT a, sum(s), count(*) FROM \
             (SELECT a, b, sum(q) AS s FROM t GROUP BY ROLLUP (a, b)) GROUP BY ROLLUP (a)",
        ];
        for sql in cases {
            let (expected, schema) = rows(ctx.sql(sql).await.unwrap()).await;
            let (got, got_schema, computed) = by_sets(&ctx, sql, usize::MAX).await;
            assert_eq!(got, expected, "{sql}");
            assert_eq!(got_schema, schema, "{sql}");
            assert!(computed > 0, "{sql}: computed set by set");
        }
    }

    #[tokio::test]
    async fn what_would_change_or_cost_more_is_left_to_datafusion() {
        let ctx = session().await;
        let cases = [
            // A float's sum and average round otherwise; a decimal's average; distinct.
            "SELECT a, b, sum(f) FROM t GROUP BY ROLLUP (a, b)",
            "SELECT a, b, avg(f), avg(d) FROM t GROUP BY ROLLUP (a, b)",
            "SELECT a, b, count(DISTINCT c) FROM t GROUP BY ROLLUP (a, b)",
            "SELECT a, b, sum(q) FILTER (WHERE c > 1) FROM t GROUP BY ROLLUP (a, b)",
            // A column in every set (a filter on it goes below); no finest set.
            "SELECT a, b, count(*) FROM t GROUP BY GROUPING SETS ((a, b), (a))",
            "SELECT a, b, count(*) FROM t GROUP BY GROUPING SETS ((a), (b))",
            // A set twice; a volatile function; no grouping sets at all.
            "SELECT a, count(*) FROM t GROUP BY GROUPING SETS ((a), (a), ())",
            "SELECT a, b, sum(q * random()) > 0 FROM t GROUP BY ROLLUP (a, b)",
            "SELECT a, b, count(*) FROM t GROUP BY a, b",
        ];
        for sql in cases {
            let (expected, schema) = rows(ctx.sql(sql).await.unwrap()).await;
            let (got, got_schema, computed) = by_sets(&ctx, sql, usize::MAX).await;
            assert_eq!(computed, 0, "{sql}");
            if !sql.contains("random") {
                assert_eq!(got, expected, "{sql}");
            }
            assert_eq!(got_schema, schema, "{sql}");
        }
        // Rows beyond the budget: DataFusion's aggregate, and the pool as it was.
        let sql = "SELECT a, b, c, count(*) FROM t GROUP BY ROLLUP (a, b, c)";
        let (expected, _) = rows(ctx.sql(sql).await.unwrap()).await;
        let (got, _, computed) = by_sets(&ctx, sql, 10_000).await;
        assert_eq!((got, computed), (expected, 0));
    }
}
