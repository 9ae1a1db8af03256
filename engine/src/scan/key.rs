//! `key` sampling: a row is kept when the stable hash of its key value falls under the
//! fraction. The decision depends only on the value and the seed, so a key is kept or
//! dropped in every source alike and joins on it stay whole.
//!
//! Rows whose key is NULL are a stratum of their own: each is kept with the same
//! probability, decided by a hash of the row's other values (a NULL key joins nothing,
//! so no join is broken, and anonymous rows keep their share instead of all going or
//! all staying).
//!
//! Heavy keys — each holding at least `HEAVY_SHARE` of a source's rows and `HEAVY_TIMES`
//! an average key's, the same in every source sampled on the key — are a stratum kept
//! whole: a sample that drew such a key or missed it would be far from the data
//! either way, and no interval could say how far (the estimates weigh their rows 1).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{HashSet, ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::lit;

use super::hash::{hash_bytes, hash_i64, unit_interval};

pub const FUNCTION_NAME: &str = "sluice_key_sample";

/// A key is heavy — kept whole in every key sample — when it holds at least this share
/// of a source's rows…
pub const HEAVY_SHARE: f64 = 0.01;
/// …and at least this many times the rows of an average key (so a source of few keys,
/// each of which holds 1% of the rows, has none).
pub const HEAVY_TIMES: f64 = 20.0;

/// The heavy keys of a source (see the module docs), as integers or as text.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeavyKeys {
    pub ints: HashSet<i64>,
    pub strings: HashSet<String>,
}

impl HeavyKeys {
    pub fn is_empty(&self) -> bool {
        self.ints.is_empty() && self.strings.is_empty()
    }

    pub fn len(&self) -> usize {
        self.strings.len().max(self.ints.len())
    }

    /// The keys as text (integers in decimal), sorted: how a sample build records them.
    pub fn to_strings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .ints
            .iter()
            .map(|i| i.to_string())
            .chain(self.strings.iter().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Heavy keys recorded as text, read back: each as text, and as an integer when
    /// it is one (a key column of either type finds them).
    pub fn from_strings(keys: &[String]) -> HeavyKeys {
        let mut out = HeavyKeys::default();
        for k in keys {
            if let Ok(i) = k.parse::<i64>() {
                out.ints.insert(i);
            }
            out.strings.insert(k.clone());
        }
        out
    }

    /// Which rows of `keys` hold a heavy key.
    fn mask(&self, keys: &ArrayRef) -> Result<Vec<bool>> {
        if self.is_empty() {
            return Ok(vec![false; keys.len()]);
        }
        if keys.data_type().is_integer() {
            let ints = cast(keys, &DataType::Int64)?;
            let ints = ints.as_primitive::<Int64Type>();
            return Ok(ints
                .iter()
                .map(|v| v.is_some_and(|v| self.ints.contains(&v)))
                .collect());
        }
        let mut out = Vec::with_capacity(keys.len());
        for_each_text(keys, |v| {
            out.push(v.is_some_and(|v| self.strings.contains(v)))
        })?;
        Ok(out)
    }
}

/// Whether a (non-NULL) key value is in the sample (exposed for tests and tools that
/// must agree with the engine).
pub fn keep_int(seed: u64, fraction: f64, value: i64) -> bool {
    unit_interval(hash_i64(seed, value)) < fraction
}

pub fn keep_str(seed: u64, fraction: f64, value: &str) -> bool {
    unit_interval(hash_bytes(seed, value.as_bytes())) < fraction
}

// The hash a NULL key sorts by in a sample build: all NULL keys sit together.
fn null_hash(seed: u64) -> u64 {
    hash_bytes(seed, b"\0sluice-null-key")
}

/// Rows a key sample looked at and kept during one run, and of them those whose key
/// is NULL (sampled row by row).
#[derive(Debug, Default)]
pub struct KeySampleCounters {
    pub rows_in: AtomicU64,
    pub rows_kept: AtomicU64,
    pub null_keys_in: AtomicU64,
    pub null_keys_kept: AtomicU64,
}

/// `sluice_key_sample(key, seed, fraction) -> bool`. One instance per source and run,
/// so its counters tell what that source's sample kept.
#[derive(Debug)]
pub struct KeySample {
    signature: Signature,
    counters: Arc<KeySampleCounters>,
    heavy: Arc<HeavyKeys>,
}

impl KeySample {
    pub fn new(counters: Arc<KeySampleCounters>, heavy: Arc<HeavyKeys>) -> Self {
        KeySample {
            signature: Signature::variadic_any(Volatility::Immutable),
            counters,
            heavy,
        }
    }

    /// The predicate that keeps a source's sampled rows: `others` are the row's other
    /// columns, which decide the rows whose key is NULL.
    pub fn predicate(
        key: Expr,
        others: Vec<Expr>,
        seed: u64,
        fraction: f64,
        counters: Arc<KeySampleCounters>,
        heavy: Arc<HeavyKeys>,
    ) -> Expr {
        let udf = Arc::new(ScalarUDF::new_from_impl(KeySample::new(counters, heavy)));
        let mut args = vec![key, lit(ScalarValue::UInt64(Some(seed))), lit(fraction)];
        args.extend(others);
        udf.call(args)
    }
}

/// A key sample's predicate (`KeySample::predicate`) as two that keep the same rows
/// between them: the rows with a key, decided by the key alone (so a scan of them reads
/// that one column, where the predicate made it read every column for the sake of the
/// rows without one), and the rows whose key is NULL, decided by their other columns.
/// Both count into counters of their own, so a run's report is the first read's.
/// `None` when `predicate` is not a key sample's call.
pub fn split_by_null_key(predicate: &Expr) -> Option<(Expr, Expr)> {
    let Expr::ScalarFunction(call) = predicate else {
        return None;
    };
    let sample = call.func.inner().downcast_ref::<KeySample>()?;
    let [key, seed, fraction, ..] = call.args.as_slice() else {
        return None;
    };
    let fresh = |args: Vec<Expr>| {
        let udf = KeySample::new(Arc::default(), sample.heavy.clone());
        Arc::new(ScalarUDF::new_from_impl(udf)).call(args)
    };
    let keyed =
        key.clone()
            .is_not_null()
            .and(fresh(vec![key.clone(), seed.clone(), fraction.clone()]));
    let unkeyed = key.clone().is_null().and(fresh(call.args.clone()));
    Some((keyed, unkeyed))
}

impl PartialEq for KeySample {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.counters, &other.counters)
    }
}

impl Eq for KeySample {}

impl Hash for KeySample {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.counters) as usize).hash(state);
    }
}

impl ScalarUDFImpl for KeySample {
    fn name(&self) -> &str {
        FUNCTION_NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [key, seed, fraction, others @ ..] = args.args.as_slice() else {
            return exec_err!("{FUNCTION_NAME} takes (key, seed, fraction, other columns…)");
        };
        let seed = match seed {
            ColumnarValue::Scalar(ScalarValue::UInt64(Some(s))) => *s,
            ColumnarValue::Scalar(ScalarValue::Int64(Some(s))) => *s as u64,
            _ => return exec_err!("{FUNCTION_NAME}: the seed must be an integer literal"),
        };
        let fraction = match fraction {
            ColumnarValue::Scalar(ScalarValue::Float64(Some(f))) => *f,
            _ => return exec_err!("{FUNCTION_NAME}: the fraction must be a float literal"),
        };
        let keys = key.to_array(args.number_rows)?;
        let others = others
            .iter()
            .map(|c| c.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let mask = keep_mask(&keys, &others, seed, fraction)?;
        let mask = if self.heavy.is_empty() {
            mask
        } else {
            let heavy = self.heavy.mask(&keys)?;
            mask.iter()
                .zip(heavy)
                .map(|(k, h)| Some(h || k.unwrap_or(false)))
                .collect()
        };
        let c = &self.counters;
        c.rows_in.fetch_add(mask.len() as u64, Ordering::Relaxed);
        c.rows_kept
            .fetch_add(mask.true_count() as u64, Ordering::Relaxed);
        let nulls = keys.null_count();
        if nulls > 0 {
            let kept = (0..keys.len())
                .filter(|i| keys.is_null(*i) && mask.value(*i))
                .count();
            c.null_keys_in.fetch_add(nulls as u64, Ordering::Relaxed);
            c.null_keys_kept.fetch_add(kept as u64, Ordering::Relaxed);
        }
        Ok(ColumnarValue::Array(Arc::new(mask)))
    }
}

/// Which rows are kept: by the key's hash, and where the key is NULL, by a hash of the
/// row's `others` values (each such row on its own, with the same probability).
fn keep_mask(
    keys: &ArrayRef,
    others: &[ArrayRef],
    seed: u64,
    fraction: f64,
) -> Result<BooleanArray> {
    let hashes = key_hashes(keys, seed)?;
    let row_hashes = if keys.null_count() > 0 {
        Some(row_hashes(others, seed, keys)?)
    } else {
        None
    };
    Ok(hashes
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            let h = match &row_hashes {
                Some(rows) if keys.is_null(i) => rows[i],
                _ => h,
            };
            Some(unit_interval(h) < fraction)
        })
        .collect())
}

/// A hash of each NULL-key row's values (as arrow displays them), for its own draw.
fn row_hashes(columns: &[ArrayRef], seed: u64, keys: &ArrayRef) -> Result<Vec<u64>> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("\0null");
    let formatters = columns
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut text = String::new();
    Ok((0..keys.len())
        .map(|i| {
            if !keys.is_null(i) {
                return 0;
            }
            text.clear();
            for f in &formatters {
                use std::fmt::Write;
                let _ = write!(text, "{}\u{1f}", f.value(i));
            }
            hash_bytes(seed ^ 0x6e75_6c6c_6b65_7973, text.as_bytes())
        })
        .collect())
}

/// The hash each key value is sampled by: integers of any width alike, other types as
/// their text.
fn key_hashes(keys: &ArrayRef, seed: u64) -> Result<Vec<u64>> {
    let dt = keys.data_type();
    if dt.is_integer() {
        let ints = cast(keys, &DataType::Int64)?;
        let ints = ints.as_primitive::<Int64Type>();
        return Ok(ints
            .iter()
            .map(|v| v.map_or_else(|| null_hash(seed), |v| hash_i64(seed, v)))
            .collect());
    }
    let mut out = Vec::with_capacity(keys.len());
    for_each_text(keys, |v| {
        out.push(v.map_or_else(|| null_hash(seed), |v| hash_bytes(seed, v.as_bytes())))
    })?;
    Ok(out)
}

/// Calls `f` with each row's key as text (`None` where NULL): string columns of every
/// layout as they are (a `Utf8View` key, as DataFusion reads Parquet strings, is not
/// copied into a `Utf8` column first), other types as their text.
fn for_each_text(keys: &ArrayRef, f: impl FnMut(Option<&str>)) -> Result<()> {
    match keys.data_type() {
        DataType::Utf8 => keys.as_string::<i32>().iter().for_each(f),
        DataType::LargeUtf8 => keys.as_string::<i64>().iter().for_each(f),
        DataType::Utf8View => keys.as_string_view().iter().for_each(f),
        _ => cast(keys, &DataType::Utf8)?
            .as_string::<i32>()
            .iter()
            .for_each(f),
    }
    Ok(())
}

/// `sluice_key_weight(key) -> Float64`: how many rows of the full data a sampled row of
/// this key stands for: `heavy_weight` for a heavy key (kept whole), `weight` for the
/// others.
#[derive(Debug)]
pub struct KeyWeight {
    signature: Signature,
    heavy: Arc<HeavyKeys>,
    heavy_weight: f64,
    weight: f64,
}

impl PartialEq for KeyWeight {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.heavy, &other.heavy)
            && self.weight == other.weight
            && self.heavy_weight == other.heavy_weight
    }
}

impl Eq for KeyWeight {}

impl Hash for KeyWeight {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.heavy) as usize).hash(state);
        self.weight.to_bits().hash(state);
        self.heavy_weight.to_bits().hash(state);
    }
}

impl KeyWeight {
    pub fn expr(key: Expr, heavy: Arc<HeavyKeys>, heavy_weight: f64, weight: f64) -> Expr {
        let udf = Arc::new(ScalarUDF::new_from_impl(KeyWeight {
            signature: Signature::any(1, Volatility::Immutable),
            heavy,
            heavy_weight,
            weight,
        }));
        udf.call(vec![key])
    }
}

impl ScalarUDFImpl for KeyWeight {
    fn name(&self) -> &str {
        "sluice_key_weight"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [key] = args.args.as_slice() else {
            return exec_err!("sluice_key_weight takes (key)");
        };
        let keys = key.to_array(args.number_rows)?;
        let heavy = self.heavy.mask(&keys)?;
        Ok(ColumnarValue::Array(Arc::new(
            datafusion::arrow::array::Float64Array::from_iter_values(
                heavy
                    .into_iter()
                    .map(|h| if h { self.heavy_weight } else { self.weight }),
            ),
        )))
    }
}

/// `sluice_key_hash(key, seed) -> UInt64`: the hash a key sample decides by. Sample
/// builds sort by it, so rows of one key sit together and a later `system` read of the
/// build picks whole keys.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KeyHash {
    signature: Signature,
}

impl KeyHash {
    pub fn expr(key: Expr, seed: u64) -> Expr {
        let udf = Arc::new(ScalarUDF::new_from_impl(KeyHash {
            signature: Signature::any(2, Volatility::Immutable),
        }));
        udf.call(vec![key, lit(ScalarValue::UInt64(Some(seed)))])
    }
}

impl ScalarUDFImpl for KeyHash {
    fn name(&self) -> &str {
        "sluice_key_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [key, seed] = args.args.as_slice() else {
            return exec_err!("sluice_key_hash takes (key, seed)");
        };
        let ColumnarValue::Scalar(ScalarValue::UInt64(Some(seed))) = seed else {
            return exec_err!("sluice_key_hash: the seed must be an integer literal");
        };
        let keys = key.to_array(args.number_rows)?;
        let hashes = key_hashes(&keys, *seed)?;
        Ok(ColumnarValue::Array(Arc::new(
            datafusion::arrow::array::UInt64Array::from(hashes),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Int32Array, Int64Array, LargeStringArray, StringArray, StringViewArray,
    };

    #[test]
    fn int_widths_agree() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(
            keep_mask(&a, &[], 7, 0.5).unwrap(),
            keep_mask(&b, &[], 7, 0.5).unwrap()
        );
    }

    #[test]
    fn string_layouts_agree() {
        // The same text keeps and weighs alike whatever its column's layout, as its
        // text (`keep_str`) does: a Utf8View read from Parquet, a Utf8 built by hand, a
        // large string, a dictionary.
        let values: Vec<Option<String>> = (0..2_000)
            .map(|i| (i % 97 != 0).then(|| format!("acct-{i}")))
            .collect();
        let utf8: ArrayRef = Arc::new(StringArray::from(values.clone()));
        let layouts: Vec<ArrayRef> = vec![
            Arc::new(StringViewArray::from(values.clone())),
            Arc::new(LargeStringArray::from(values.clone())),
            cast(
                &utf8,
                &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            )
            .unwrap(),
        ];
        let heavy = HeavyKeys::from_strings(&["acct-5".into(), "acct-1234".into()]);
        let want = keep_mask(&utf8, &[], 7, 0.3).unwrap();
        for (v, kept) in values.iter().zip(want.iter()) {
            if let Some(v) = v {
                assert_eq!(kept, Some(keep_str(7, 0.3, v)), "{v}");
            }
        }
        assert_eq!(heavy.mask(&utf8).unwrap().iter().filter(|h| **h).count(), 2);
        for keys in &layouts {
            assert_eq!(
                keep_mask(keys, &[], 7, 0.3).unwrap(),
                want,
                "{}",
                keys.data_type()
            );
            assert_eq!(heavy.mask(keys).unwrap(), heavy.mask(&utf8).unwrap());
        }
    }

    #[test]
    fn strings_sample_near_fraction() {
        let values: Vec<String> = (0..20_000).map(|i| format!("acct-{i}")).collect();
        let a: ArrayRef = Arc::new(StringArray::from(values));
        let m = keep_mask(&a, &[], 1, 0.1).unwrap();
        let f = m.true_count() as f64 / m.len() as f64;
        assert!((f - 0.1).abs() < 0.01, "{f}");
    }

    #[test]
    fn null_keys_are_a_stratum_sampled_row_by_row() {
        // 20,000 rows without a key, told apart by another column: about a tenth kept,
        // not all or none.
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![None::<i64>; 20_000]));
        let ids: ArrayRef = Arc::new(Int64Array::from((0..20_000).collect::<Vec<i64>>()));
        let m = keep_mask(&keys, &[ids.clone()], 3, 0.1).unwrap();
        let f = m.true_count() as f64 / m.len() as f64;
        assert!((f - 0.1).abs() < 0.01, "{f}");
        // The same rows decide alike, another seed otherwise.
        assert_eq!(m, keep_mask(&keys, &[ids.clone()], 3, 0.1).unwrap());
        assert_ne!(m, keep_mask(&keys, &[ids], 4, 0.1).unwrap());
    }

    /// The two halves of `split_by_null_key` keep, between them, the rows the key
    /// sample's own predicate keeps: keys hashed in, heavy keys kept whole, NULL keys
    /// drawn row by row.
    #[tokio::test]
    async fn split_by_null_key_keeps_the_same_rows() {
        use datafusion::catalog::MemTable;
        use datafusion::logical_expr::{LogicalPlanBuilder, col};
        use datafusion::prelude::SessionContext;

        let n = 5_000i64;
        // Keys 0..500 (key 7 heavy), every 9th row without a key; `v` tells rows apart.
        let k: ArrayRef =
            Arc::new(Int64Array::from_iter((0..n).map(|i| {
                (i % 9 != 0).then_some(if i % 4 == 0 { 7 } else { i % 500 })
            })));
        let v: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let batch =
            datafusion::arrow::record_batch::RecordBatch::try_from_iter([("k", k), ("v", v)])
                .unwrap();
        let ctx = SessionContext::new();
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        let scan = ctx.table("t").await.unwrap().into_unoptimized_plan();
        let heavy = Arc::new(HeavyKeys::from_strings(&["7".to_string()]));
        let predicate =
            KeySample::predicate(col("k"), vec![col("v")], 11, 0.2, Arc::default(), heavy);
        let (keyed, unkeyed) = split_by_null_key(&predicate).expect("a key sample's call");
        let rows = |plan| async {
            let df = datafusion::dataframe::DataFrame::new(ctx.state(), plan);
            let batches = df
                .sort(vec![col("v").sort(true, false)])
                .unwrap()
                .collect()
                .await;
            let batches = batches.unwrap();
            let mut out = Vec::new();
            for b in &batches {
                let k = b.column(0).as_primitive::<Int64Type>();
                let v = b.column(1).as_primitive::<Int64Type>();
                out.extend(
                    (0..b.num_rows()).map(|i| (k.is_valid(i).then(|| k.value(i)), v.value(i))),
                );
            }
            out
        };
        let filter = |p: Expr| {
            LogicalPlanBuilder::from(scan.clone())
                .filter(p)
                .unwrap()
                .build()
                .unwrap()
        };
        let whole = rows(filter(predicate.clone())).await;
        let halves = LogicalPlanBuilder::from(filter(keyed))
            .union(filter(unkeyed))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(rows(halves).await, whole);
        // Not a vacuous comparison: some rows of each kind are kept, and not all.
        assert!(whole.iter().any(|(k, _)| k.is_none()));
        assert!(whole.iter().any(|(k, _)| *k == Some(7)));
        assert!(whole.iter().any(|(k, _)| k.is_some_and(|k| k != 7)));
        assert!(whole.len() < n as usize / 2, "{}", whole.len());
        assert!(split_by_null_key(&col("k").is_null()).is_none());
    }
}
