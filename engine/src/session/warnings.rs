//! Warnings about how a pipe reads its sample, before anyone trusts its answer:
//!
//! - a join of two sampled sources on a column that is not both sides' sample key:
//!   a joined row is in the sample only when both sides' rows are (the fractions
//!   multiply), so the join mostly comes back empty;
//! - a GROUP BY on a source's declared sort column under `system` sampling: the rows of
//!   one group sit in a few row groups, so each group is missing from the sample or
//!   whole, never in proportion.
//!
//! Each names the pipe, the node and the columns, and the sampling that keeps the pipe
//! whole (`sluice validate`, and `sluice run -v`).

use std::collections::{BTreeSet, HashMap};

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::project::sampling::{SamplePolicy, SourceSampling};
use crate::project::{Pipe, Project};
use crate::scan::SourceScan;

/// One warning about a pipe's sampled read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SamplingWarning {
    pub pipe: String,
    /// The node whose SQL does it.
    pub node: String,
    pub message: String,
}

impl std::fmt::Display for SamplingWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pipe `{}`, node `{}`: {}",
            self.pipe, self.node, self.message
        )
    }
}

/// How one source is sampled in the run, as the warnings need it.
struct Sampled {
    method: &'static str,
    key: Option<String>,
    sort: Vec<String>,
}

/// The warnings of `pipe`, planned (every node a view) as `plan` over `scans`.
pub(crate) fn warnings(
    project: &Project,
    pipe: &Pipe,
    plan: &LogicalPlan,
    scans: &[SourceScan],
) -> Vec<SamplingWarning> {
    let mut sampled = HashMap::new();
    for s in scans {
        let SourceSampling::Sampled(policy) = &s.sampling else {
            continue;
        };
        let method = match policy {
            SamplePolicy::System { .. } => "system",
            SamplePolicy::Key { .. } => "key",
            SamplePolicy::Bernoulli { .. } => "bernoulli",
            SamplePolicy::Rows { .. } => "rows",
        };
        let def = project.sources.get(&s.source);
        sampled.insert(
            s.source.to_ascii_lowercase(),
            Sampled {
                method,
                key: s
                    .key_column
                    .clone()
                    .or_else(|| def.and_then(|d| d.sample_key.clone())),
                sort: def
                    .map(|d| d.sort.iter().map(|k| k.column.clone()).collect())
                    .unwrap_or_default(),
            },
        );
    }
    if sampled.is_empty() {
        return Vec::new();
    }
    let nodes: BTreeSet<String> = pipe
        .nodes
        .iter()
        .map(|n| n.name.to_ascii_lowercase())
        .collect();
    let output = pipe.output().name.clone();
    let mut out = BTreeSet::new();
    visit(plan, &output, &nodes, &sampled, pipe, &mut out);
    out.into_iter().collect()
}

/// Walks the plan, its views inlined, knowing which node it is in.
fn visit(
    plan: &LogicalPlan,
    node: &str,
    nodes: &BTreeSet<String>,
    sampled: &HashMap<String, Sampled>,
    pipe: &Pipe,
    out: &mut BTreeSet<SamplingWarning>,
) {
    let warn = |out: &mut BTreeSet<SamplingWarning>, message: String| {
        out.insert(SamplingWarning {
            pipe: pipe.name.clone(),
            node: node.to_string(),
            message,
        });
    };
    match plan {
        LogicalPlan::TableScan(scan) => {
            // A node read as a view: its plan is that node's.
            let name = scan.table_name.table().to_ascii_lowercase();
            if nodes.contains(&name)
                && let Ok(provider) = source_as_provider(&scan.source)
                && let Some(view) = provider.downcast_ref::<datafusion::catalog::view::ViewTable>()
            {
                let node_name = pipe
                    .nodes
                    .iter()
                    .find(|n| n.name.eq_ignore_ascii_case(&name))
                    .map(|n| n.name.clone())
                    .unwrap_or(name);
                visit(view.logical_plan(), &node_name, nodes, sampled, pipe, out);
            }
            return;
        }
        LogicalPlan::Join(j) => {
            let left = sources_under(&j.left, sampled);
            let right = sources_under(&j.right, sampled);
            if let (Some(l), Some(r)) = (left.first(), right.first()) {
                let (ls, rs) = (&sampled[l], &sampled[r]);
                let pairs = equalities(j);
                let on_keys = match (&ls.key, &rs.key) {
                    (Some(lk), Some(rk)) if ls.method == "key" && rs.method == "key" => pairs
                        .iter()
                        .any(|(a, b)| (a == lk && b == rk) || (a == rk && b == lk)),
                    _ => false,
                };
                // A join without an equality here is joined by a WHERE above it (or is
                // a cross join): not judged.
                if !on_keys && !pairs.is_empty() {
                    let cols = if pairs.is_empty() {
                        "no equality".to_string()
                    } else {
                        pairs
                            .iter()
                            .map(|(a, b)| format!("{a} = {b}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let fix = match pairs.first() {
                        Some((a, b)) if a == b => format!(
                            "sample both by `key` on `{a}` (sample_key = \"{a}\" in both sources' [sources.*] and `sample = {{ method = \"key\", … }}`), or read one side in full (sample = \"full\")"
                        ),
                        Some((a, b)) => format!(
                            "sample both by `key` on the joined column (`{a}` / `{b}`), or read one side in full (sample = \"full\")"
                        ),
                        None => "read one side in full (sample = \"full\")".to_string(),
                    };
                    warn(
                        out,
                        format!(
                            "joins `{l}` ({}) and `{r}` ({}) on {cols}, which is not both sides' sample key: a joined row is in the sample only when both its rows are, so the join keeps the product of the fractions; {fix}",
                            ls.method, rs.method
                        ),
                    );
                }
            }
        }
        LogicalPlan::Aggregate(a) => {
            for g in &a.group_expr {
                for c in g.column_refs() {
                    for (source, s) in sampled {
                        let named = c
                            .relation
                            .as_ref()
                            .is_none_or(|r| r.table().eq_ignore_ascii_case(source));
                        if s.method == "system"
                            && named
                            && s.sort.iter().any(|k| k.eq_ignore_ascii_case(&c.name))
                            && sources_under(&a.input, sampled).contains(source)
                        {
                            warn(
                                out,
                                format!(
                                    "groups by `{}`, the declared sort order of `{source}`, under `system` sampling: the rows of one group sit in a few row groups, so each group is missing from the sample or whole, not in proportion; `bernoulli` sampling (or `key` on `{}`) keeps every group in proportion",
                                    c.name,
                                    s.key.as_deref().unwrap_or("its sample_key")
                                ),
                            );
                        }
                    }
                }
            }
        }
        LogicalPlan::SubqueryAlias(sa) => {
            let alias = sa.alias.table().to_ascii_lowercase();
            if nodes.contains(&alias) {
                let node_name = pipe
                    .nodes
                    .iter()
                    .find(|n| n.name.eq_ignore_ascii_case(&alias))
                    .map(|n| n.name.clone())
                    .unwrap_or(alias);
                visit(&sa.input, &node_name, nodes, sampled, pipe, out);
                return;
            }
        }
        _ => {}
    }
    for input in plan.inputs() {
        visit(input, node, nodes, sampled, pipe, out);
    }
}

/// The sampled sources a plan reads (through views too).
fn sources_under(plan: &LogicalPlan, sampled: &HashMap<String, Sampled>) -> Vec<String> {
    let mut found = BTreeSet::new();
    let _ = plan.apply(|p| {
        if let LogicalPlan::TableScan(s) = p {
            let name = s.table_name.table().to_ascii_lowercase();
            if sampled.contains_key(&name) {
                found.insert(name);
            } else if let Ok(provider) = source_as_provider(&s.source)
                && let Some(view) = provider.downcast_ref::<datafusion::catalog::view::ViewTable>()
            {
                found.extend(sources_under(view.logical_plan(), sampled));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found.into_iter().collect()
}

/// The column names a join equates (its ON/USING pairs and its filter's equalities).
fn equalities(j: &datafusion::logical_expr::Join) -> Vec<(String, String)> {
    let name = |e: &Expr| match e {
        Expr::Column(c) => Some(c.name.clone()),
        Expr::Cast(c) => match c.expr.as_ref() {
            Expr::Column(c) => Some(c.name.clone()),
            _ => None,
        },
        _ => None,
    };
    super::join_equalities(j)
        .filter_map(|(a, b)| Some((name(a)?, name(b)?)))
        .collect()
}
