//! Data checks as the project defines them: `[[check]]` tables of a pipe file
//! (assertions on its output) and `checks/*.sql` (queries over an environment's sources
//! that must return no rows). `quality::checks` runs them.

use std::path::PathBuf;

use datafusion::arrow::datatypes::Schema;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use crate::project::Pipe;

/// One `[[check]]` of a pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct DataCheck {
    /// Its `name`, or one made from its kind and columns, e.g. `not_null(name, won)`.
    pub name: String,
    pub kind: CheckKind,
}

/// What a check asserts about every row (or the number of rows) of a pipe's output.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// None of these columns is NULL.
    NotNull(Vec<String>),
    /// The combination of these columns is unique.
    Unique(Vec<String>),
    /// Every non-NULL value of the column is one of these.
    AcceptedValues {
        column: String,
        values: Vec<CheckValue>,
    },
    /// The output has at least `min` and at most `max` rows.
    RowCount { min: Option<u64>, max: Option<u64> },
    /// A SQL boolean that is TRUE for every row (FALSE or NULL fails).
    Expression(String),
}

/// A literal of an `accepted_values` list.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckValue {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl CheckValue {
    /// The SQL literal of the value.
    pub fn sql(&self) -> String {
        match self {
            CheckValue::String(s) => format!("'{}'", s.replace('\'', "''")),
            CheckValue::Int(i) => i.to_string(),
            CheckValue::Float(f) => format!("{f:?}"),
            CheckValue::Bool(b) => b.to_string(),
        }
    }
}

impl DataCheck {
    /// The name of a check without a `name`: its kind and what it is about.
    pub fn default_name(kind: &CheckKind) -> String {
        match kind {
            CheckKind::NotNull(cols) => format!("not_null({})", cols.join(", ")),
            CheckKind::Unique(cols) => format!("unique({})", cols.join(", ")),
            CheckKind::AcceptedValues { column, .. } => format!("accepted_values({column})"),
            CheckKind::RowCount { min, max } => match (min, max) {
                (Some(a), Some(b)) => format!("row_count({a}..={b})"),
                (Some(a), None) => format!("row_count(>={a})"),
                (None, Some(b)) => format!("row_count(<={b})"),
                (None, None) => "row_count".to_string(),
            },
            CheckKind::Expression(e) => format!("expression({})", e.trim()),
        }
    }

    /// The output columns the check names (not those inside an expression, which
    /// DataFusion resolves when the check runs).
    pub fn columns(&self) -> Vec<&str> {
        match &self.kind {
            CheckKind::NotNull(cols) | CheckKind::Unique(cols) => {
                cols.iter().map(|c| c.as_str()).collect()
            }
            CheckKind::AcceptedValues { column, .. } => vec![column.as_str()],
            CheckKind::RowCount { .. } | CheckKind::Expression(_) => Vec::new(),
        }
    }
}

/// A free SQL check: `checks/NAME.sql`, one query over the environment's sources that
/// must return no rows.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCheck {
    /// The file's stem.
    pub name: String,
    /// The file, absolute.
    pub file: PathBuf,
    pub sql: String,
}

/// Parses a check's `expression`: one SQL expression, nothing after it.
pub fn parse_expression(expr: &str) -> std::result::Result<(), String> {
    super::sql::check_limits(expr)?;
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .try_with_sql(expr)
        .map_err(|e| format!("expression does not parse: {e}"))?;
    parser
        .parse_expr()
        .map_err(|e| format!("expression does not parse: {e}"))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(format!(
            "expression does not parse: unexpected `{}` after the expression at Line: {}, Column: {}",
            next.token, next.span.start.line, next.span.start.column
        ));
    }
    Ok(())
}

/// Checks that every column a pipe's checks name is a column of its output `schema`.
/// The error names the pipe, the check and the column.
pub fn check_columns(pipe: &Pipe, schema: &Schema) -> std::result::Result<(), String> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for check in &pipe.checks {
        for col in check.columns() {
            if names.contains(&col) {
                continue;
            }
            let hint = match names.iter().find(|n| n.eq_ignore_ascii_case(col)) {
                Some(n) => format!(" (did you mean `{n}`? column names are case-sensitive)"),
                None => String::new(),
            };
            return Err(format!(
                "pipe `{}`, check `{}`: the pipe's output has no column `{col}`{hint} (its columns: {})",
                pipe.name,
                check.name,
                names.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_parse_whole() {
        assert!(parse_expression("won >= 0 AND name IS NOT NULL").is_ok());
        let err = parse_expression("won >= 0 extra").unwrap_err();
        assert!(err.contains("unexpected `extra`"), "{err}");
        assert!(parse_expression("won >=").is_err());
    }

    #[test]
    fn literals_and_names() {
        assert_eq!(CheckValue::String("o'k".into()).sql(), "'o''k'");
        assert_eq!(CheckValue::Float(1.0).sql(), "1.0");
        assert_eq!(
            DataCheck::default_name(&CheckKind::RowCount {
                min: Some(1),
                max: None
            }),
            "row_count(>=1)"
        );
    }
}
