//! Comparing two runs of a pipe: two versions on the same data (the code change and
//! nothing else), or what two environments run. Schema changes, row counts, per-column
//! match rates joined on a key, and a sample of differing rows.

use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{Int64Type, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::gates::{SchemaChange, schema_changes};
use crate::error::{Result, SluiceError};
use crate::session::RunOutput;
use crate::util::text::quote_ident;

/// One side of a comparison, for the report.
#[derive(Debug, Clone)]
pub struct DiffSide {
    /// e.g. `production@1a2b3c4d5e6f`.
    pub label: String,
    pub rows: u64,
}

#[derive(Debug, Clone)]
pub struct ColumnMatch {
    pub column: String,
    /// Rows present on both sides whose values are equal (nulls equal nulls).
    pub matching: u64,
    pub compared: u64,
}

impl ColumnMatch {
    pub fn percent(&self) -> f64 {
        if self.compared == 0 {
            100.0
        } else {
            self.matching as f64 * 100.0 / self.compared as f64
        }
    }
}

#[derive(Debug, Clone)]
pub struct DiffReport {
    pub base: DiffSide,
    pub head: DiffSide,
    pub schema_changes: Vec<SchemaChange>,
    pub key: Vec<String>,
    /// Rows only in base / only in head (by key, or as whole rows without a key).
    pub only_in_base: u64,
    pub only_in_head: u64,
    pub columns: Vec<ColumnMatch>,
    /// Up to `sample` differing rows, as printable tables.
    pub sample_base: Vec<RecordBatch>,
    pub sample_head: Vec<RecordBatch>,
}

impl DiffReport {
    pub fn is_equal(&self) -> bool {
        self.schema_changes.is_empty()
            && self.only_in_base == 0
            && self.only_in_head == 0
            && self.columns.iter().all(|c| c.matching == c.compared)
            && self.base.rows == self.head.rows
    }
}

async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>> {
    Ok(ctx.sql(sql).await?.collect().await?)
}

async fn count(ctx: &SessionContext, sql: &str) -> Result<u64> {
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(batches
        .first()
        .filter(|b| b.num_rows() > 0)
        .map(|b| b.column(0).as_primitive::<Int64Type>().value(0) as u64)
        .unwrap_or(0))
}

/// Compares the outputs of two runs, joined on `key` when given.
pub async fn diff_outputs(
    base_label: String,
    base: &RunOutput,
    head_label: String,
    head: &RunOutput,
    key: &[String],
    sample: usize,
) -> Result<DiffReport> {
    let changes = schema_changes(&base.schema, &head.schema);
    for k in key {
        for (side, schema) in [(&base_label, &base.schema), (&head_label, &head.schema)] {
            if schema.field_with_name(k).is_err() {
                return Err(SluiceError::Usage(format!(
                    "key column `{k}` is not in the output of {side}"
                )));
            }
        }
    }
    let ctx = SessionContext::new();
    register(&ctx, "base", &base.schema, &base.batches)?;
    register(&ctx, "head", &head.schema, &head.batches)?;
    // Columns both sides have with the same type are compared.
    let common: Vec<String> = base
        .schema
        .fields()
        .iter()
        .filter(|f| {
            head.schema
                .field_with_name(f.name())
                .is_ok_and(|h| h.data_type() == f.data_type())
        })
        .map(|f| f.name().clone())
        .collect();
    let cols = common
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let mut report = DiffReport {
        base: DiffSide {
            label: base_label,
            rows: base.report.rows_out,
        },
        head: DiffSide {
            label: head_label,
            rows: head.report.rows_out,
        },
        schema_changes: changes,
        key: key.to_vec(),
        only_in_base: 0,
        only_in_head: 0,
        columns: Vec::new(),
        sample_base: Vec::new(),
        sample_head: Vec::new(),
    };
    if common.is_empty() {
        return Ok(report);
    }
    if key.is_empty() {
        // Without a key, rows are compared whole, as multisets.
        report.only_in_base = count(
            &ctx,
            &format!(
                "SELECT count(*) FROM (SELECT {cols} FROM base EXCEPT ALL SELECT {cols} FROM head)"
            ),
        )
        .await?;
        report.only_in_head = count(
            &ctx,
            &format!(
                "SELECT count(*) FROM (SELECT {cols} FROM head EXCEPT ALL SELECT {cols} FROM base)"
            ),
        )
        .await?;
        report.sample_base = collect(
            &ctx,
            &format!("SELECT {cols} FROM base EXCEPT ALL SELECT {cols} FROM head LIMIT {sample}"),
        )
        .await?;
        report.sample_head = collect(
            &ctx,
            &format!("SELECT {cols} FROM head EXCEPT ALL SELECT {cols} FROM base LIMIT {sample}"),
        )
        .await?;
        return Ok(report);
    }
    let on = key
        .iter()
        .map(|k| format!("(b.{0} IS NOT DISTINCT FROM h.{0})", quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    report.only_in_base = count(
        &ctx,
        &format!("SELECT count(*) FROM base b LEFT ANTI JOIN head h ON {on}"),
    )
    .await?;
    report.only_in_head = count(
        &ctx,
        &format!("SELECT count(*) FROM head h LEFT ANTI JOIN base b ON {on}"),
    )
    .await?;
    let mut differs = Vec::new();
    for c in common.iter().filter(|c| !key.contains(c)) {
        let q = quote_ident(c);
        let sql = format!(
            "SELECT count(*) AS compared, count(*) FILTER (WHERE (b.{q} IS NOT DISTINCT FROM h.{q})) AS matching \
             FROM base b JOIN head h ON {on}"
        );
        let batches = ctx.sql(&sql).await?.collect().await?;
        let b = &batches[0];
        let compared = b.column(0).as_primitive::<Int64Type>().value(0) as u64;
        let matching = b.column(1).as_primitive::<Int64Type>().value(0) as u64;
        report.columns.push(ColumnMatch {
            column: c.clone(),
            matching,
            compared,
        });
        // Parenthesized: the parser binds IS DISTINCT FROM looser than OR.
        differs.push(format!("(b.{q} IS DISTINCT FROM h.{q})"));
    }
    let any_differs = if differs.is_empty() {
        "false".to_string()
    } else {
        differs.join(" OR ")
    };
    // Rows of one side whose key is missing on the other side, or whose values differ.
    let differing = |table: &str, this: &str, other_table: &str, other: &str| {
        let keys = key
            .iter()
            .map(|k| format!("{this}.{}", quote_ident(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let first = quote_ident(&key[0]);
        format!(
            "SELECT {this}.* FROM {table} {this} LEFT JOIN {other_table} {other} ON {on} \
             WHERE ({other}.{first} IS NULL AND {this}.{first} IS NOT NULL) OR ({any_differs}) \
             ORDER BY {keys} LIMIT {sample}"
        )
    };
    report.sample_base = collect(&ctx, &differing("base", "b", "head", "h")).await?;
    report.sample_head = collect(&ctx, &differing("head", "h", "base", "b")).await?;
    Ok(report)
}

fn register(
    ctx: &SessionContext,
    name: &str,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    let batches: Vec<RecordBatch> = batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .cloned()
        .collect();
    let table = MemTable::try_new(schema.clone(), vec![batches])?;
    ctx.register_table(name, Arc::new(table))?;
    Ok(())
}

/// Rows of a report's samples, for printing.
pub fn sample_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}
