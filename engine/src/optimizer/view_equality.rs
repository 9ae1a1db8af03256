//! [`ViewEquality`], a physical optimizer rule: `column = 'text'`, `<>`, `IN (…)` and
//! `NOT IN (…)` of a string-view column against literals compared on the columns'
//! 16-byte views, without a branch per row.
//!
//! Why: DataFusion reads Parquet strings as `Utf8View`, and arrow compares a view array
//! to a scalar row by row through a chain of checks (buffers, length, prefix, bytes);
//! `IN` hashes every value. TPC-H q19's `l_shipmode IN ('AIR', 'AIR REG')` and
//! `l_shipinstruct = 'DELIVER IN PERSON'` were a fifth of its CPU time at SF 1, q10's
//! `l_returnflag = 'R'` over 6 M rows most of its filter's.
//!
//! How: a view holds a string's length and, for up to 12 bytes, the string itself;
//! above that, its first 4 bytes and where the rest is. A literal of up to 12 bytes
//! equals a value exactly when the value's view, masked to the length and the literal's
//! bytes, equals the literal's: a 128-bit comparison a row, done as two 64-bit halves
//! so the compiler vectorizes it (four views to an AVX2 step). A longer literal first
//! compares the length and first 4 bytes (64 bits) and reads the bytes of the few rows
//! that pass. Each literal of an `IN` list is one such pass, OR-ed. Nulls stay null.
//! The rewrite applies to projections, filters and aggregate arguments; `explain` shows
//! the expression as it was.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, StringViewArray};
use datafusion::arrow::buffer::{BooleanBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, InListExpr, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// The longest `IN` list compared view by view: each literal is a pass over the column,
/// so a long list is left to arrow's hash set.
const MAX_LIST: usize = 16;

/// Replaces string-view equalities with literals by [`ViewEquals`] (see the module's
/// documentation).
#[derive(Debug, Default)]
pub struct ViewEquality;

impl PhysicalOptimizerRule for ViewEquality {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        super::rewrite_row_expressions(plan, &|expr, schema| {
            Arc::clone(expr).transform_up(|e| match ViewEquals::try_new(&e, schema) {
                Some(equals) => Ok(Transformed::yes(Arc::new(equals) as _)),
                None => Ok(Transformed::no(e)),
            })
        })
    }

    fn name(&self) -> &str {
        "sluice_view_equality"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A literal as the views of equal values show it.
#[derive(Debug, Clone)]
struct Needle {
    bytes: Vec<u8>,
    /// For up to 12 bytes the whole view, else the length and first 4 bytes.
    view: u128,
    /// The bits of a view that `view` must match.
    mask: u128,
}

impl Needle {
    fn new(bytes: &[u8]) -> Needle {
        let len = bytes.len();
        let mut view = [0u8; 16];
        view[..4].copy_from_slice(&(len as u32).to_le_bytes());
        let shown = len.min(if len <= 12 { 12 } else { 4 });
        view[4..4 + shown].copy_from_slice(&bytes[..shown]);
        let mask_bytes = 4 + shown;
        let mask = if mask_bytes == 16 {
            u128::MAX
        } else {
            (1u128 << (8 * mask_bytes)) - 1
        };
        Needle {
            bytes: bytes.to_vec(),
            view: u128::from_le_bytes(view),
            mask,
        }
    }

    fn inline(&self) -> bool {
        self.bytes.len() <= 12
    }

    /// The rows whose view matches `view` under `mask`, 64 views to a word of the bitmap.
    /// Each view is read as its two 64-bit halves in memory order, and a row matches when
    /// both masked halves do: `(a & m) ^ n | (b & m') ^ n' == 0`. That form compiles to
    /// 64-bit vector compares; comparing whole `u128`s, or each half with its own `==`,
    /// compiled to about two views per step and took twice as long.
    fn candidates(&self, views: &ScalarBuffer<u128>) -> BooleanBuffer {
        let halves = |x: u128| {
            let bytes = x.to_ne_bytes();
            let half = |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap());
            (half(0), half(8))
        };
        let (first, second) = halves(self.view);
        let (mask_first, mask_second) = halves(self.mask);
        // A `ScalarBuffer<u128>` is aligned for `u128` and a whole number of them, so
        // this view of it as `u64`s has neither a misaligned head nor a tail.
        let words_of_views: &[u64] = views.inner().typed_data::<u64>();
        let mut words: Vec<u64> = Vec::with_capacity(views.len().div_ceil(64));
        for chunk in words_of_views.chunks(128) {
            let mut word = 0u64;
            for (j, view) in chunk.chunks_exact(2).enumerate() {
                let differs = ((view[0] & mask_first) ^ first) | ((view[1] & mask_second) ^ second);
                word |= ((differs == 0) as u64) << j;
            }
            words.push(word);
        }
        BooleanBuffer::new(words.into(), 0, views.len())
    }

    /// The rows of `array` equal to the literal.
    fn matches(&self, array: &StringViewArray) -> BooleanBuffer {
        let candidates = self.candidates(array.views());
        if self.inline() || candidates.count_set_bits() == 0 {
            return candidates;
        }
        // The length and first 4 bytes matched: compare the rest at those rows only.
        let mut exact = datafusion::arrow::array::BooleanBufferBuilder::new(array.len());
        exact.append_n(array.len(), false);
        for i in candidates.set_indices() {
            if array.value(i).as_bytes() == self.bytes.as_slice() {
                exact.set_bit(i, true);
            }
        }
        exact.finish()
    }
}

/// `column = literal`, `column <> literal`, `column IN (literals…)` or `column NOT IN
/// (literals…)` of a `Utf8View` column, compared on views (see the module's
/// documentation).
#[derive(Debug)]
pub struct ViewEquals {
    /// The expression it stands for: shown by `explain`, and evaluated when the column
    /// is not a view array after all.
    original: Arc<dyn PhysicalExpr>,
    column: Arc<dyn PhysicalExpr>,
    needles: Vec<Needle>,
    negated: bool,
}

impl PartialEq for ViewEquals {
    fn eq(&self, other: &Self) -> bool {
        self.original.eq(&other.original)
    }
}

impl Eq for ViewEquals {}

impl Hash for ViewEquals {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.original.hash(state);
    }
}

/// The text of a non-null string literal.
fn literal_text(expr: &Arc<dyn PhysicalExpr>) -> Option<&str> {
    match expr.downcast_ref::<Literal>()?.value() {
        ScalarValue::Utf8View(Some(s)) | ScalarValue::Utf8(Some(s)) => Some(s.as_str()),
        _ => None,
    }
}

impl ViewEquals {
    /// Stands for `expr` when it compares a `Utf8View` column with string literals.
    pub(crate) fn try_new(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<ViewEquals> {
        let is_view_column = |e: &Arc<dyn PhysicalExpr>| {
            e.is::<Column>() && e.data_type(schema).ok() == Some(DataType::Utf8View)
        };
        let (column, texts, negated) = if let Some(b) = expr.downcast_ref::<BinaryExpr>() {
            let negated = match b.op() {
                Operator::Eq => false,
                Operator::NotEq => true,
                _ => return None,
            };
            let (column, literal) = if is_view_column(b.left()) {
                (b.left(), b.right())
            } else if is_view_column(b.right()) {
                (b.right(), b.left())
            } else {
                return None;
            };
            (column, vec![literal_text(literal)?], negated)
        } else if let Some(list) = expr.downcast_ref::<InListExpr>() {
            if !is_view_column(list.expr()) || list.list().len() > MAX_LIST {
                return None;
            }
            let texts = list
                .list()
                .iter()
                .map(literal_text)
                .collect::<Option<Vec<_>>>()?;
            (list.expr(), texts, list.negated())
        } else {
            return None;
        };
        Some(ViewEquals {
            original: Arc::clone(expr),
            column: Arc::clone(column),
            needles: texts.iter().map(|t| Needle::new(t.as_bytes())).collect(),
            negated,
        })
    }

    fn evaluate_views(&self, array: &StringViewArray) -> BooleanArray {
        let mut hits: Option<BooleanBuffer> = None;
        for needle in &self.needles {
            let these = needle.matches(array);
            hits = Some(match hits {
                Some(h) => &h | &these,
                None => these,
            });
        }
        let hits = hits.unwrap_or_else(|| BooleanBuffer::new_unset(array.len()));
        let values = if self.negated { !&hits } else { hits };
        BooleanArray::new(values, array.nulls().cloned())
    }
}

impl fmt::Display for ViewEquals {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.original)
    }
}

impl PhysicalExpr for ViewEquals {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.original.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if let ColumnarValue::Array(array) = self.column.evaluate(batch)?
            && let Some(views) = array.as_string_view_opt()
        {
            return Ok(ColumnarValue::Array(Arc::new(self.evaluate_views(views))));
        }
        self.original.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.column]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        // The original with the new column in the old one's place.
        let old = Arc::clone(&self.column);
        let new = Arc::clone(&children[0]);
        let original = Arc::clone(&self.original)
            .transform_down(|e| {
                if e.as_ref() == old.as_ref() {
                    Ok(Transformed::yes(Arc::clone(&new)))
                } else {
                    Ok(Transformed::no(e))
                }
            })?
            .data;
        Ok(Arc::new(ViewEquals {
            original,
            column: new,
            needles: self.needles.clone(),
            negated: self.negated,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt_sql(f)
    }
}

/// Whether `expr` is a [`ViewEquals`]: a cheap condition for `FilterConjunction`.
pub(crate) fn is_view_equals(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.is::<ViewEquals>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{col, lit};

    fn values() -> StringViewArray {
        // Short and long strings, shared prefixes, an empty string and nulls; the long
        // ones put the array's bytes in a data buffer.
        let words = [
            Some("AIR"),
            Some("AIR REG"),
            Some("AIRX"),
            None,
            Some(""),
            Some("DELIVER IN PERSON"),
            Some("DELIVER IN PERSONS"),
            Some("DELI"),
            Some("DELIVER IN PERSOM"),
            Some("TAKE BACK RETURN"),
            Some("exactly12byt"),
            Some("exactly12bytes"),
            Some("R"),
        ];
        StringViewArray::from_iter((0..200).map(|i| words[i * 7 % words.len()]))
    }

    fn check(expr: Arc<dyn PhysicalExpr>, batch: &RecordBatch) {
        let ours = ViewEquals::try_new(&expr, &batch.schema())
            .unwrap_or_else(|| panic!("{expr} is compared on views"));
        assert_eq!(ours.to_string(), expr.to_string());
        let expected = expr
            .evaluate(batch)
            .unwrap()
            .into_array(batch.num_rows())
            .unwrap();
        let got = ours
            .evaluate(batch)
            .unwrap()
            .into_array(batch.num_rows())
            .unwrap();
        assert_eq!(got.as_boolean(), expected.as_boolean(), "{expr}");
    }

    #[test]
    fn same_answers_as_arrow_for_short_long_and_listed_literals() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        // The whole array (three words of the bitmap and a part), and a slice of it that
        // starts inside the first word and ends inside the third.
        for column in [values(), values().slice(5, 130)] {
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(column)]).unwrap();
            check_all(&batch);
        }
    }

    /// Every comparison of the column `s` of `batch`, against arrow's answers.
    fn check_all(batch: &RecordBatch) {
        let schema = batch.schema();
        let s = &col("s", &schema).unwrap();
        let text = |t: &str| lit(ScalarValue::Utf8View(Some(t.into())));
        for t in [
            "AIR",
            "AIR REG",
            "",
            "DELIVER IN PERSON",
            "DELIVER IN PERSONS",
            "exactly12byt",
            "exactly12bytes",
            "R",
            "absent",
            "absent and longer than twelve",
        ] {
            for op in [Operator::Eq, Operator::NotEq] {
                check(Arc::new(BinaryExpr::new(Arc::clone(s), op, text(t))), batch);
                check(Arc::new(BinaryExpr::new(text(t), op, Arc::clone(s))), batch);
            }
        }
        for negated in [false, true] {
            let list = vec![text("AIR"), text("DELIVER IN PERSON"), text(""), text("R")];
            check(
                Arc::new(InListExpr::try_new(Arc::clone(s), list, negated, &schema).unwrap()),
                batch,
            );
        }
    }

    #[test]
    fn other_types_and_null_literals_are_left_alone() {
        let schema = Schema::new(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new("u", DataType::Utf8, true),
        ]);
        let s = col("s", &schema).unwrap();
        let u = col("u", &schema).unwrap();
        let plain = Arc::new(BinaryExpr::new(u, Operator::Eq, lit("AIR"))) as _;
        assert!(ViewEquals::try_new(&plain, &schema).is_none());
        let null = Arc::new(BinaryExpr::new(
            Arc::clone(&s),
            Operator::Eq,
            lit(ScalarValue::Utf8View(None)),
        )) as _;
        assert!(ViewEquals::try_new(&null, &schema).is_none());
        let less = Arc::new(BinaryExpr::new(s, Operator::Lt, lit("AIR"))) as _;
        assert!(ViewEquals::try_new(&less, &schema).is_none());
    }
}
