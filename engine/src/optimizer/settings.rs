//! The DataFusion configuration every session of an environment starts from: the
//! defaults Sluice picked for throughput, then any `DATAFUSION_*` environment variable
//! (DataFusion's own names, e.g. `DATAFUSION_EXECUTION_BATCH_SIZE=16384`, to try a
//! setting without a rebuild), then the environment's own settings from `sluice.toml`.

use std::sync::Arc;

use datafusion::config::ConfigOptions;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::AggregateUDF;
use datafusion::optimizer::{Optimizer, OptimizerRule};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::SessionConfig;

use crate::optimizer::key_join_rows;
use crate::project::EngineSettings;

/// The settings `with_sluice_rules` sets beside its rules: DataFusion's join selection
/// consults the statistics registry it registers (`key_join_rows`) only with
/// `use_statistics_registry` on. Not among `SLUICE_DEFAULTS`, which every session gets
/// (a Ballista cluster's too): without Sluice's registry, DataFusion would use its own
/// built-in providers, which estimate a join whose keys have no distinct count as a
/// cartesian product.
pub const RULE_SETTINGS: &[&str] = &["datafusion.optimizer.use_statistics_registry"];

/// Settings Sluice changes from DataFusion's defaults, each kept because it measured
/// faster on TPC-H (BENCHMARKS.md has the figures and the settings that did not win).
///
/// - `skip_partial_aggregation_probe_ratio_threshold` 0.2 (DataFusion: 0.8): a partial
///   aggregate that, after its first 100,000 rows, holds more groups than a fifth of the
///   rows it saw is skipped, its rows passed to the final aggregate as they are. High
///   cardinality GROUP BYs (q18's `GROUP BY l_orderkey` keeps one group in four rows)
///   stop hashing every row twice: q18 −10%, q16 −12%, the SF 1 suite −3%.
/// - `hash_join_single_partition_threshold` 16 MiB and `…_rows` 1 M (DataFusion: 1 MiB
///   and 128 K): a hash join whose build side is estimated under both is built once and
///   shared by every partition of its probe side, instead of both sides being
///   repartitioned by key. With the join order of `optimizer::join_order` the build
///   sides are the filtered dimensions and the joins on them, which DataFusion's
///   estimates often put above 128 K rows: the SF 10 suite −11%, SF 1 −6% (q05 −26%,
///   q08 −29%, q17 −25% at SF 10).
/// - `perfect_hash_join_small_build_threshold` 1 M (DataFusion: 1,024): a hash join
///   whose build keys span fewer than a million integers looks its probe rows up in an
///   array indexed by key (4 bytes a key: 4 MiB at most, twice a core's L2 cache here;
///   256 K and 4 M keys measured the same) instead of its hash table, however sparse
///   the keys. DataFusion's density rule (a key for every 6.7 integers) kept the array
///   for dense keys only, while the sparse ones gain most: q17's 204 parts, looked up
///   by 6 M `lineitem` rows twice, take 10–13 ms a join instead of 46 at SF 1, q11's
///   suppliers of one nation 1.5 ms instead of 4 (the SF 1 suite 0.970, q17 0.76, q11
///   0.88, q02 0.90; BENCHMARKS.md "Ninth pass").
/// - `default_filter_selectivity` 5% (DataFusion: 20%): the share of rows DataFusion
///   assumes a filter keeps when it cannot estimate it (a `LIKE`, a comparison of two
///   columns), which decides the build sides of the joins above it. q09's
///   `p_name LIKE '%green%'` keeps 5.4% of the parts; taken for a fifth, the parts'
///   join with `lineitem` looked larger than `partsupp`, whose 8 M rows (SF 10) were
///   hashed instead of the 3.3 M joined rows: q09 0.86 at SF 10 (1.9 → 1.2 GiB peak
///   RSS), q03 and q20 0.89, the SF 10 suite 0.973, SF 1 unchanged (1.002).
///
/// `pushdown_filters` (row-level filtering in the Parquet scan) stays off here: it is
/// turned on scan by scan, where a selective filter is, by
/// `optimizer::SelectiveRowFilters`; `DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS=true`
/// turns it on for every scan.
pub const SLUICE_DEFAULTS: &[(&str, &str)] = &[
    (
        "datafusion.execution.skip_partial_aggregation_probe_ratio_threshold",
        "0.2",
    ),
    (
        "datafusion.optimizer.hash_join_single_partition_threshold",
        "16777216",
    ),
    (
        "datafusion.optimizer.hash_join_single_partition_threshold_rows",
        "1048576",
    ),
    (
        "datafusion.execution.perfect_hash_join_small_build_threshold",
        "1048576",
    ),
    ("datafusion.optimizer.default_filter_selectivity", "5"),
];

/// Runs whose sources hold at most this many rows (their footers' counts) are planned
/// as small inputs (`small_input_settings`). `SLUICE_SMALL_INPUT_ROWS` overrides it
/// (0: never), to measure either way without a rebuild.
pub const SMALL_INPUT_ROWS: u64 = 1_000_000;

fn small_input_rows() -> u64 {
    static ROWS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *ROWS.get_or_init(|| match std::env::var("SLUICE_SMALL_INPUT_ROWS") {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(value = %v, "SLUICE_SMALL_INPUT_ROWS is not a number of rows; ignored");
            SMALL_INPUT_ROWS
        }),
        Err(_) => SMALL_INPUT_ROWS,
    })
}

/// How a run whose sources hold `rows` rows in all reads them. Up to `SMALL_INPUT_ROWS`
/// rows its scans read no bloom filters: with row groups this small, reading a row group
/// costs about what reading its filter does, and a filter is read for every row group the
/// statistics did not prune. A `DATAFUSION_*` variable that sets it is kept.
///
/// Not one partition: planning small runs in a single partition (no repartitioning, one
/// aggregation phase) was measured slower on 2 cores from 10,000 rows up (the sales_calls
/// endpoints at 100,000 calls: `top_reps` 31 ms against 18 ms in two partitions, see
/// BENCHMARKS.md's endpoint figures): the scan and the aggregate lose the second core.
pub fn small_input_settings(options: &mut ConfigOptions, rows: u64) {
    if rows > small_input_rows() {
        return;
    }
    if std::env::var("DATAFUSION_EXECUTION_PARQUET_BLOOM_FILTER_ON_READ").is_err() {
        options.execution.parquet.bloom_filter_on_read = false;
    }
}

/// The session configuration of an environment with `settings`.
pub fn session_config(settings: &EngineSettings) -> SessionConfig {
    let mut options = ConfigOptions::default();
    apply_sluice_defaults(&mut options);
    apply_env_overrides(&mut options, |name| std::env::var(name).ok());
    let mut config = SessionConfig::from(options);
    if let Some(n) = settings.target_partitions {
        config = config.with_target_partitions(n);
    }
    if let Some(n) = settings.batch_size {
        config = config.with_batch_size(n);
    }
    config
}

/// Sets `SLUICE_DEFAULTS` in `options` (a test harness whose sessions start from
/// options of their own, such as `tests/sqllogictest`, applies them with this).
pub fn apply_sluice_defaults(options: &mut ConfigOptions) {
    for (key, value) in SLUICE_DEFAULTS {
        options
            .set(key, value)
            .expect("Sluice's defaults are valid DataFusion settings");
    }
}

/// The session state a local run plans with: `config`, `runtime`, DataFusion's default
/// features and Sluice's own optimizer rules (`optimizer/`): `JoinOrder` after DataFusion's
/// filter pushdown, `BuildOnFewerRows` right after its join selection,
/// `SelectiveRowFilters`, `FilterOrder`, `EarlyDynamicFilters`, `DecimalArithmetic`,
/// `ClusteredAggregate`, `LikeSegments`, `ViewEquality` and `FilterConjunction` after all of its physical rules.
pub fn session_state(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionState {
    let builder = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features();
    let builder = with_sluice_functions(builder, skipped_rules());
    with_sluice_rules(builder, skipped_rules()).build()
}

/// `builder` with Sluice's versions of DataFusion functions registered over
/// DataFusion's (the same answers, faster): `any_value` with a groups accumulator
/// (`any_value::AnyValue`), unless `skipped` names it (`any_value::SKIP_NAME`).
pub fn with_sluice_functions(
    mut builder: SessionStateBuilder,
    skipped: &[String],
) -> SessionStateBuilder {
    if !skipped
        .iter()
        .any(|s| s == crate::optimizer::any_value::SKIP_NAME)
    {
        builder
            .aggregate_functions()
            .get_or_insert_with(Vec::new)
            .push(Arc::new(AggregateUDF::new_from_impl(
                crate::optimizer::any_value::AnyValue::default(),
            )));
    }
    builder
}

/// `builder` with Sluice's logical and physical optimizer rules (DataFusion's with
/// Sluice's in their places) and its physical row estimates (`key_join_rows`), but
/// those named in `skipped`. `session_state` passes
/// `SLUICE_SKIP_RULES`' names; a harness that bisects a failure to one rule passes its
/// own (`tests/sqllogictest`).
pub fn with_sluice_rules(builder: SessionStateBuilder, skipped: &[String]) -> SessionStateBuilder {
    let mut logical = all_optimizer_rules();
    logical.retain(|r| !skipped.iter().any(|s| s == r.name()));
    let mut physical = all_physical_optimizer_rules();
    physical.retain(|r| !skipped.iter().any(|s| s == r.name()));
    let mut builder = builder
        .with_optimizer_rules(logical)
        .with_physical_optimizer_rules(physical);
    if !skipped.iter().any(|s| s == key_join_rows::SKIP_NAME) {
        // DataFusion's join selection consults the registry only with this set
        // (`RULE_SETTINGS`).
        if let Some(config) = builder.config() {
            config.options_mut().optimizer.use_statistics_registry = true;
        }
        builder = builder.with_statistics_registry(key_join_rows::registry());
    }
    builder
}

/// A session for a rule's unit tests: `config` and Sluice's rules, all of them or all but
/// the one `without` names.
#[cfg(test)]
pub(crate) fn rules_session(
    config: SessionConfig,
    without: Option<&str>,
) -> datafusion::prelude::SessionContext {
    let skipped: Vec<String> = without.into_iter().map(str::to_string).collect();
    let builder = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features();
    datafusion::prelude::SessionContext::new_with_state(
        with_sluice_rules(builder, &skipped).build(),
    )
}

/// The names of Sluice's own optimizer rules, logical then physical (each `sluice_…`),
/// and of its function replacements (`with_sluice_functions`): what
/// `SLUICE_SKIP_RULES=` all of them leaves is DataFusion's planner and functions with
/// Sluice's settings.
pub fn sluice_rule_names() -> Vec<String> {
    let logical = all_optimizer_rules()
        .into_iter()
        .map(|r| r.name().to_string());
    let physical = all_physical_optimizer_rules()
        .into_iter()
        .map(|r| r.name().to_string());
    logical
        .chain(physical)
        .filter(|n| n.starts_with("sluice_"))
        .chain(SKIPPABLE_STEPS.iter().map(|n| n.to_string()))
        .collect()
}

/// DataFusion's logical optimizer rules with Sluice's `PaddedRowsFiltered` right after
/// DataFusion's `eliminate_outer_join`, `JoinOrder` right after filter
/// pushdown: the filters it estimates with are on the scans by then, and projection
/// pushdown, which comes later, prunes the columns of the joins it builds.
/// `SemiJoinPushdown` and `OuterJoinsLast` right before it, `AggregateKeys` and `ConstantGroupKeys` after it, `MixedDistinct` then `PreAggregateGroupingSets` right
/// before DataFusion's `single_distinct_aggregation_to_group_by`, and `KeysBelowJoins`
/// last.
/// Leaves out the rules `SLUICE_SKIP_RULES` names (see `skipped_rules`).
pub fn optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let skipped = skipped_rules();
    let mut rules = all_optimizer_rules();
    rules.retain(|r| !skipped.iter().any(|s| s == r.name()));
    rules
}

fn all_optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules = Optimizer::new().rules;
    let after_filter_pushdown = rules
        .iter()
        .position(|r| r.name() == "push_down_filter")
        .map_or(rules.len(), |i| i + 1);
    rules.insert(
        after_filter_pushdown,
        Arc::new(crate::optimizer::constant_keys::ConstantGroupKeys),
    );
    rules.insert(
        after_filter_pushdown,
        Arc::new(crate::optimizer::aggregate_keys::AggregateKeys),
    );
    rules.insert(
        after_filter_pushdown,
        Arc::new(crate::optimizer::join_order::JoinOrder),
    );
    rules.insert(
        after_filter_pushdown,
        Arc::new(crate::optimizer::outer_joins::OuterJoinsLast),
    );
    rules.insert(
        after_filter_pushdown,
        Arc::new(crate::optimizer::semi_joins::SemiJoinPushdown),
    );
    // Beside DataFusion's own rule, which knows NULL-rejecting conditions by their shape.
    let after_outer_joins = rules
        .iter()
        .position(|r| r.name() == "eliminate_outer_join")
        .map_or(0, |i| i + 1);
    rules.insert(
        after_outer_joins,
        Arc::new(crate::optimizer::outer_joins::PaddedRowsFiltered),
    );
    // Before DataFusion's distinct rewrite, which would leave these aggregates alone.
    let before_single_distinct = rules
        .iter()
        .position(|r| r.name() == "single_distinct_aggregation_to_group_by")
        .unwrap_or(rules.len());
    rules.insert(
        before_single_distinct,
        Arc::new(crate::optimizer::grouping_sets::PreAggregateGroupingSets),
    );
    rules.insert(
        before_single_distinct,
        Arc::new(crate::optimizer::mixed_distinct::MixedDistinct),
    );
    // Last: the joins' order and the columns they pass on are settled by then.
    rules.push(Arc::new(crate::optimizer::keys_below_joins::KeysBelowJoins));
    rules
}

/// DataFusion's physical optimizer rules with Sluice's in their places, but those
/// `SLUICE_SKIP_RULES` names.
pub fn physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let skipped = skipped_rules();
    let mut rules = all_physical_optimizer_rules();
    rules.retain(|r| !skipped.iter().any(|s| s == r.name()));
    rules
}

fn all_physical_optimizer_rules() -> Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> {
    let mut rules = PhysicalOptimizer::new().rules;
    let after_join_selection = rules
        .iter()
        .position(|r| r.name() == "join_selection")
        .map_or(0, |i| i + 1);
    rules.insert(
        after_join_selection,
        Arc::new(crate::optimizer::BuildOnFewerRows),
    );
    rules.push(Arc::new(crate::optimizer::SelectiveRowFilters));
    rules.push(Arc::new(crate::optimizer::filter_order::FilterOrder));
    rules.push(Arc::new(
        crate::optimizer::early_dynamic_filters::EarlyDynamicFilters,
    ));
    rules.push(Arc::new(
        crate::optimizer::decimal_arithmetic::DecimalArithmetic,
    ));
    rules.push(Arc::new(
        crate::optimizer::clustered_aggregate::ClusteredAggregate,
    ));
    rules.push(Arc::new(crate::optimizer::like_segments::LikeSegments));
    rules.push(Arc::new(crate::optimizer::view_equality::ViewEquality));
    // Last: it reads the conjuncts as the rules before left them.
    rules.push(Arc::new(crate::optimizer::conjunction::FilterConjunction));
    rules
}

/// What `SLUICE_SKIP_RULES` can leave out besides optimizer rules: Sluice's `any_value`
/// (`with_sluice_functions`), its row estimates of joins on several keys
/// (`key_join_rows`, registered by `with_sluice_rules`), a local run's computing once the subplans it reads
/// more than once (`session::shared_nodes::share_repeated`), as the values read when
/// read as sets, and its grouping sets set
/// by set (`session::grouping_levels`), and a long-lived session's running its kept
/// plans again (`session::prepared`).
pub const SKIPPABLE_STEPS: [&str; 6] = [
    crate::optimizer::any_value::SKIP_NAME,
    key_join_rows::SKIP_NAME,
    SHARED_SUBPLANS,
    SHARED_SETS,
    GROUPING_LEVELS,
    PREPARED_PLANS,
];

/// The name `SLUICE_SKIP_RULES` takes to read a `WITH` query (or view) a plan holds
/// more than once where it is, each time, as DataFusion plans it.
pub const SHARED_SUBPLANS: &str = "sluice_shared_subplans";

/// The name `SLUICE_SKIP_RULES` takes to compute a shared `WITH` query whole when its
/// readers read it only as a set (see `session::set_reads`).
pub const SHARED_SETS: &str = "sluice_shared_sets";

/// The name `SLUICE_SKIP_RULES` takes to leave a local run's `ROLLUP`, `CUBE` and
/// `GROUPING SETS` to DataFusion's aggregate (see `session::grouping_levels`).
pub const GROUPING_LEVELS: &str = "sluice_grouping_levels";

/// The name `SLUICE_SKIP_RULES` takes to plan every run of a long-lived session anew.
pub const PREPARED_PLANS: &str = "sluice_prepared_plans";

/// Whether `SLUICE_SKIP_RULES` names `step` (a rule or one of `SKIPPABLE_STEPS`).
pub fn skipped(step: &str) -> bool {
    skipped_rules().iter().any(|s| s == step)
}

/// The optimizer rules `SLUICE_SKIP_RULES` names (comma-separated, by their `name()`:
/// `sluice_filter_conjunction`, `join_selection`…), left
/// out of every session: to see what a rule changes, or to get around one that plans
/// a query badly, without a rebuild. A name no rule has is ignored with a warning.
/// Read and checked once a process: every run builds a session, twice its rule lists,
/// and the check builds every rule again.
fn skipped_rules() -> &'static [String] {
    static SKIPPED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SKIPPED.get_or_init(read_skipped_rules)
}

fn read_skipped_rules() -> Vec<String> {
    let Ok(list) = std::env::var("SLUICE_SKIP_RULES") else {
        return Vec::new();
    };
    let names: Vec<String> = list
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let known: Vec<String> = all_optimizer_rules()
        .iter()
        .map(|r| r.name().to_string())
        .chain(
            all_physical_optimizer_rules()
                .iter()
                .map(|r| r.name().to_string()),
        )
        .chain(SKIPPABLE_STEPS.iter().map(|n| n.to_string()))
        .collect();
    for name in &names {
        if !known.contains(name) {
            tracing::warn!(%name, "SLUICE_SKIP_RULES names no optimizer rule");
        }
    }
    names
}

/// Sets each option whose environment variable (`datafusion.execution.batch_size` →
/// `DATAFUSION_EXECUTION_BATCH_SIZE`) `var` finds. A value that does not parse is
/// skipped with a warning: a stray variable must not stop every query.
fn apply_env_overrides(options: &mut ConfigOptions, var: impl Fn(&str) -> Option<String>) {
    let keys: Vec<String> = options.entries().into_iter().map(|e| e.key).collect();
    for key in keys {
        let name = key.to_uppercase().replace('.', "_");
        if let Some(value) = var(&name) {
            match options.set(&key, &value) {
                Ok(()) => tracing::info!(%key, %value, "DataFusion setting from the environment"),
                Err(e) => tracing::warn!(%name, %value, error = %e, "ignored"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_variables_override_defaults() {
        let mut options = ConfigOptions::default();
        apply_env_overrides(&mut options, |name| match name {
            "DATAFUSION_EXECUTION_BATCH_SIZE" => Some("1234".into()),
            "DATAFUSION_EXECUTION_TARGET_PARTITIONS" => Some("not a number".into()),
            _ => None,
        });
        assert_eq!(options.execution.batch_size.get(), 1234);
        assert_eq!(
            options.execution.target_partitions,
            ConfigOptions::default().execution.target_partitions
        );
    }

    #[test]
    fn sluice_defaults_apply_and_variables_override_them() {
        let config = session_config(&EngineSettings::default());
        for (key, value) in SLUICE_DEFAULTS {
            let entry = config
                .options()
                .entries()
                .into_iter()
                .find(|e| &e.key == key)
                .expect("a DataFusion setting");
            assert_eq!(entry.value.as_deref(), Some(*value), "{key}");
        }
        let mut options = ConfigOptions::default();
        options
            .set("datafusion.execution.parquet.pushdown_filters", "true")
            .unwrap();
        apply_env_overrides(&mut options, |name| {
            (name == "DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS").then(|| "false".into())
        });
        assert!(!options.execution.parquet.pushdown_filters);
    }

    /// A join whose few build keys lie far apart (20 keys over 950,000 integers, as
    /// q17's 204 parts over 197 K keys at SF 1) looks its rows up in an array under
    /// Sluice's settings, and in a hash table under DataFusion's.
    #[tokio::test]
    async fn sparse_join_keys_are_looked_up_in_an_array() {
        use datafusion::prelude::SessionContext;

        async fn array_maps(config: SessionConfig) -> String {
            let runtime = Arc::new(RuntimeEnv::default());
            let ctx = SessionContext::new_with_state(session_state(config, runtime));
            // `few` is the build side: the left one, neither having statistics.
            let sql = "EXPLAIN ANALYZE SELECT count(*) FROM \
                       (SELECT value * 50000 AS k FROM generate_series(0, 19)) few \
                       JOIN (SELECT value AS k FROM generate_series(0, 999999)) big \
                       ON few.k = big.k";
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string();
            let join = text
                .lines()
                .find(|l| l.contains("HashJoinExec") && l.contains("build_input_rows=20,"))
                .unwrap_or_else(|| panic!("{text}"));
            let count = join
                .split("array_map_created_count=")
                .nth(1)
                .unwrap_or_else(|| panic!("{join}"));
            count.chars().take_while(char::is_ascii_digit).collect()
        }

        let sluice = session_config(&EngineSettings::default());
        assert_ne!(array_maps(sluice).await, "0");
        let mut options = ConfigOptions::default();
        options.execution.perfect_hash_join_small_build_threshold = 1024;
        assert_eq!(array_maps(SessionConfig::from(options)).await, "0");
    }

    #[test]
    fn small_inputs_read_no_bloom_filters_and_keep_their_partitions() {
        let settings = EngineSettings::default();
        let mut small = session_config(&settings).options().as_ref().clone();
        small.execution.target_partitions = 8;
        small_input_settings(&mut small, SMALL_INPUT_ROWS);
        assert_eq!(small.execution.target_partitions, 8);
        assert!(!small.execution.parquet.bloom_filter_on_read);
        let mut large = session_config(&settings).options().as_ref().clone();
        small_input_settings(&mut large, SMALL_INPUT_ROWS + 1);
        assert!(large.execution.parquet.bloom_filter_on_read);
    }

    #[test]
    fn environment_settings_win() {
        let config = session_config(&EngineSettings {
            batch_size: Some(4096),
            ..EngineSettings::default()
        });
        assert_eq!(config.batch_size(), 4096);
    }
}
