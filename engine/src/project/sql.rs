//! What a node's SQL refers to, found by DataFusion's own parser (never by string
//! matching): the tables it reads and the `$name` placeholders it uses.

use std::collections::BTreeSet;

use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::resolve::resolve_table_references;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use datafusion::sql::sqlparser::ast::Statement as Sql;

/// The largest SQL text of one node or query, in bytes.
pub const MAX_SQL_BYTES: usize = 1 << 20;
/// The most binary operators (`+`, `AND`, `=`, …) one statement may chain. Each one can
/// nest the expression a level deeper, and planning walks expressions recursively: a
/// chain of thousands would overflow the planner's stack and abort the process, so it
/// is refused before it is parsed. Sluice plans on threads with a 64 MiB stack, enough
/// for this many with a wide margin, even in a debug build (tests/config.rs,
/// `deep_sql_is_refused_before_planning`).
pub const MAX_SQL_OPERATORS: usize = 2048;

/// The most nodes a pipe may have: each reads earlier ones as nested views.
pub const MAX_PIPE_NODES: usize = 128;
/// The most SELECTs in one statement, and in all of a pipe's nodes together: each
/// nests the plan a level deeper.
pub const MAX_SQL_SELECTS: usize = 256;
pub const MAX_PIPE_QUERIES: usize = 256;

/// How many SELECTs a text holds (0 when it does not tokenize: the parser says why).
pub fn select_count(sql: &str) -> usize {
    let dialect = GenericDialect {};
    Tokenizer::new(&dialect, sql)
        .tokenize()
        .map(|tokens| {
            tokens
                .iter()
                .filter(|t| matches!(t, Token::Word(w) if w.keyword == Keyword::SELECT))
                .count()
        })
        .unwrap_or(0)
}

/// Checks the size, the operator count and the SELECT count of SQL before anything
/// parses it, with the tokenizer (which does not recurse).
pub fn check_limits(sql: &str) -> Result<(), String> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(format!(
            "the SQL is {} bytes, more than the limit of {} bytes",
            sql.len(),
            MAX_SQL_BYTES
        ));
    }
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| format!("SQL does not tokenize: {e}"))?;
    let operators = tokens
        .iter()
        .filter(|t| match t {
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::DuckIntDiv
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Caret
            | Token::Ampersand
            | Token::Pipe
            | Token::ShiftLeft
            | Token::ShiftRight => true,
            Token::Word(w) => matches!(
                w.keyword,
                Keyword::AND | Keyword::OR | Keyword::LIKE | Keyword::ILIKE | Keyword::IS
            ),
            _ => false,
        })
        .count();
    let selects = tokens
        .iter()
        .filter(|t| matches!(t, Token::Word(w) if w.keyword == Keyword::SELECT))
        .count();
    if selects > MAX_SQL_SELECTS {
        return Err(format!(
            "the SQL has {selects} SELECTs, more than the limit of {MAX_SQL_SELECTS}: each nests the plan a level deeper"
        ));
    }
    if operators > MAX_SQL_OPERATORS {
        return Err(format!(
            "the SQL chains {operators} operators, more than the limit of {MAX_SQL_OPERATORS} (an expression that long is refused before planning: split it, or use IN (…) for a list of values)"
        ));
    }
    Ok(())
}

/// Parses SQL that must be exactly one statement.
fn parse_one(sql: &str) -> Result<Statement, String> {
    check_limits(sql)?;
    let mut statements = DFParser::parse_sql(sql)
        .map_err(|e| format!("SQL does not parse: {}", e.strip_backtrace()))?;
    if statements.len() != 1 {
        return Err(format!(
            "expected one SQL statement, found {}",
            statements.len()
        ));
    }
    Ok(statements.pop_front().expect("one statement"))
}

fn is_query(statement: &Statement) -> bool {
    matches!(statement, Statement::Statement(s) if matches!(s.as_ref(), Sql::Query(_)))
}

/// The lower-cased names of the tables a statement reads (CTEs excluded).
fn tables_read(statement: &Statement) -> Result<Vec<String>, String> {
    let (tables, _ctes) = resolve_table_references(statement, true).map_err(|e| {
        format!(
            "cannot resolve the tables the SQL reads: {}",
            e.strip_backtrace()
        )
    })?;
    // Unqualified names are sources or nodes; `sluice.*` are Sluice's own tables
    // (`sluice.pipe_stats`, `sluice.SOURCE_errors`), kept qualified.
    Ok(tables
        .into_iter()
        .filter_map(|t| match t.schema() {
            None => Some(t.table().to_ascii_lowercase()),
            Some(s) if s.eq_ignore_ascii_case(crate::project::system_tables::STATS_SCHEMA) => {
                Some(format!(
                    "{}.{}",
                    crate::project::system_tables::STATS_SCHEMA,
                    t.table().to_ascii_lowercase()
                ))
            }
            Some(_) => None,
        })
        .collect())
}

/// Parses a node's SQL, which must be exactly one query.
pub(crate) fn parse_query(sql: &str) -> Result<Statement, String> {
    let statement = parse_one(sql)?;
    if !is_query(&statement) {
        return Err("a node must be a query (SELECT, WITH or VALUES), not a command".into());
    }
    Ok(statement)
}

/// The lower-cased names of the tables a node's query reads.
pub(crate) fn node_references(sql: &str) -> Result<Vec<String>, String> {
    tables_read(&parse_query(sql)?)
}

/// The tables an ad-hoc query reads; it must be a query or an EXPLAIN of one, so
/// `sluice query` never writes (no DDL, DML or COPY).
pub(crate) fn query_references(sql: &str) -> Result<Vec<String>, String> {
    let statement = parse_one(sql)?;
    let read_only = match &statement {
        Statement::Statement(s) => match s.as_ref() {
            Sql::Query(_) => true,
            Sql::Explain { statement, .. } => matches!(statement.as_ref(), Sql::Query(_)),
            _ => false,
        },
        Statement::Explain(e) => is_query(&e.statement),
        _ => false,
    };
    if !read_only {
        return Err("only queries (SELECT, WITH, VALUES) and EXPLAIN are allowed: `sluice query` never writes".into());
    }
    tables_read(&statement)
}

/// The names of the `$name` placeholders a query uses.
pub(crate) fn placeholders(sql: &str) -> Result<BTreeSet<String>, String> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize()
        .map_err(|e| format!("SQL does not tokenize: {e}"))?;
    let mut names = BTreeSet::new();
    for t in tokens {
        if let Token::Placeholder(p) = t {
            let name = p.trim_start_matches(['$', ':', '@']);
            if name.is_empty() || name.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "placeholder `{p}`: use named parameters like `$since`, not positional ones"
                ));
            }
            names.insert(name.to_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tables_but_not_ctes() {
        let refs = node_references(
            "WITH x AS (SELECT * FROM calls) SELECT * FROM x JOIN Reps USING (rep_id)",
        )
        .unwrap();
        assert_eq!(refs, vec!["calls".to_string(), "reps".to_string()]);
    }

    #[test]
    fn refuses_commands_and_many_statements() {
        assert!(parse_query("DROP TABLE calls").is_err());
        assert!(parse_query("SELECT 1; SELECT 2").is_err());
    }

    #[test]
    fn finds_placeholders_outside_strings() {
        let p = placeholders("SELECT '$notme' AS s FROM t WHERE a > $since LIMIT $limit").unwrap();
        assert_eq!(p.into_iter().collect::<Vec<_>>(), vec!["limit", "since"]);
        assert!(placeholders("SELECT $1").is_err());
    }
}
