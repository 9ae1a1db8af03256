//! `key` sampling: a row is kept when the stable hash of its key value falls under the
//! fraction. The decision depends only on the value and the seed, so a key is kept or
//! dropped in every source alike and joins on it stay whole.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::lit;

use super::hash::{hash_bytes, hash_i64, unit_interval};

pub const FUNCTION_NAME: &str = "sluice_key_sample";

/// Whether a key value is in the sample (exposed for tests and tools that must agree
/// with the engine, e.g. sample builds).
pub fn keep_int(seed: u64, fraction: f64, value: Option<i64>) -> bool {
    unit_interval(match value {
        Some(v) => hash_i64(seed, v),
        None => null_hash(seed),
    }) < fraction
}

pub fn keep_str(seed: u64, fraction: f64, value: Option<&str>) -> bool {
    unit_interval(match value {
        Some(v) => hash_bytes(seed, v.as_bytes()),
        None => null_hash(seed),
    }) < fraction
}

// All nulls share one decision: they are kept or dropped together in every source.
fn null_hash(seed: u64) -> u64 {
    hash_bytes(seed, b"\0sluice-null-key")
}

/// Rows a key sample looked at and kept during one run.
#[derive(Debug, Default)]
pub struct KeySampleCounters {
    pub rows_in: AtomicU64,
    pub rows_kept: AtomicU64,
}

/// `sluice_key_sample(key, seed, fraction) -> bool`. One instance per source and run,
/// so its counters tell what that source's sample kept.
#[derive(Debug)]
pub struct KeySample {
    signature: Signature,
    counters: Arc<KeySampleCounters>,
}

impl KeySample {
    pub fn new(counters: Arc<KeySampleCounters>) -> Self {
        KeySample {
            signature: Signature::any(3, Volatility::Immutable),
            counters,
        }
    }

    /// The predicate that keeps a source's sampled rows.
    pub fn predicate(
        key: Expr,
        seed: u64,
        fraction: f64,
        counters: Arc<KeySampleCounters>,
    ) -> Expr {
        let udf = Arc::new(ScalarUDF::new_from_impl(KeySample::new(counters)));
        udf.call(vec![
            key,
            lit(ScalarValue::UInt64(Some(seed))),
            lit(fraction),
        ])
    }
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
        let [key, seed, fraction] = args.args.as_slice() else {
            return exec_err!("{FUNCTION_NAME} takes (key, seed, fraction)");
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
        let mask = keep_mask(&keys, seed, fraction)?;
        self.counters
            .rows_in
            .fetch_add(mask.len() as u64, Ordering::Relaxed);
        self.counters
            .rows_kept
            .fetch_add(mask.true_count() as u64, Ordering::Relaxed);
        Ok(ColumnarValue::Array(Arc::new(mask)))
    }
}

fn keep_mask(keys: &ArrayRef, seed: u64, fraction: f64) -> Result<BooleanArray> {
    Ok(key_hashes(keys, seed)?
        .into_iter()
        .map(|h| Some(unit_interval(h) < fraction))
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
    let strings = match dt {
        DataType::Utf8 => keys.clone(),
        _ => cast(keys, &DataType::Utf8)?,
    };
    let strings = strings.as_string::<i32>();
    Ok(strings
        .iter()
        .map(|v| v.map_or_else(|| null_hash(seed), |v| hash_bytes(seed, v.as_bytes())))
        .collect())
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
    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};

    #[test]
    fn int_widths_agree() {
        let a: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(
            keep_mask(&a, 7, 0.5).unwrap(),
            keep_mask(&b, 7, 0.5).unwrap()
        );
    }

    #[test]
    fn strings_sample_near_fraction() {
        let values: Vec<String> = (0..20_000).map(|i| format!("acct-{i}")).collect();
        let a: ArrayRef = Arc::new(StringArray::from(values));
        let m = keep_mask(&a, 1, 0.1).unwrap();
        let f = m.true_count() as f64 / m.len() as f64;
        assert!((f - 0.1).abs() < 0.01, "{f}");
    }
}
