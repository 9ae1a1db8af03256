//! Result cells as the quality checks show and compare them: arrow's display of each
//! value, whether it is NULL, and whether it is text (quoted when shown).

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;

use crate::util::text::toml_string;

/// One cell rendered by arrow's display formatter.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub text: String,
    pub is_null: bool,
    /// Whether the value is text-like (strings, dates, times), quoted when shown.
    pub quoted: bool,
}

impl Cell {
    /// The cell as a TOML literal: strings quoted, numbers and booleans bare, NULL as
    /// the string "null".
    pub fn toml(&self) -> String {
        if self.is_null {
            "\"null\"".to_string()
        } else if self.quoted {
            toml_string(&self.text)
        } else {
            self.text.clone()
        }
    }
}

fn is_unquoted(dt: &DataType) -> bool {
    dt.is_numeric() || matches!(dt, DataType::Boolean | DataType::Null)
}

/// Renders every row of `batches`, cell by cell, with arrow's display formatter (NULL
/// as `null`).
pub fn render(batches: &[RecordBatch]) -> Result<Vec<Vec<Cell>>, DataFusionError> {
    let options = FormatOptions::default().with_null("null");
    let mut rows = Vec::new();
    for batch in batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..batch.num_rows() {
            let mut row = Vec::with_capacity(formatters.len());
            for (c, f) in formatters.iter().enumerate() {
                let col = batch.column(c);
                row.push(Cell {
                    text: f.value(r).to_string(),
                    is_null: col.is_null(r),
                    quoted: !is_unquoted(col.data_type()),
                });
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

/// `s` cut after `width` characters, with an ellipsis.
pub fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}
