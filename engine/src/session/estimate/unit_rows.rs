//! The weighted rows of each unit a `system` sample keeps, as a function of the unit's
//! number.
//!
//! The calibration of an estimate needs, per unit, the rows of the full data the unit
//! stands for (X = its rows / π). A `system` sample's units are row groups or page
//! ranges whose rows the footers count, so X is known before the run: looked up by
//! this function from the unit column stage 1 groups by, it spares the plan a second
//! read of the sample, its aggregate per unit and the join back (planning those cost
//! more than the run). The totals over all units (N̂ and Σ(1 − π)X²) become constants of
//! the plan. A Ballista cluster knows only DataFusion's functions: its runs read the
//! sample a second time instead (`super::rewrite`'s `portable`).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Float64Array};
use datafusion::arrow::compute::cast as cast_array;
use datafusion::arrow::datatypes::{DataType, UInt64Type};
use datafusion::common::exec_err;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The calibration's totals over a sample's units, every row weighing `weight` (1/π)
/// and the units holding `rows` rows in all, `squared_rows` the sum of their rows'
/// squares: N̂ = Σ X = w·Σr, the rows of the full data the sample stands for, and
/// Σ (1 − π) X² = (1 − 1/w)·w²·Σr², with X = w·r a unit's weighted rows. Rows as units
/// (`bernoulli`) are units of one row each: Σr = Σr² = n.
pub(super) fn calibration_totals(rows: f64, squared_rows: f64, weight: f64) -> (f64, f64) {
    let q = 1.0 - 1.0 / weight;
    (weight * rows, q * weight * weight * squared_rows)
}

/// A `system` sample's units: the rows each one reads (by unit number) and the weight
/// of every row (1/π).
#[derive(Debug, Clone)]
pub(super) struct UnitRows {
    rows: Arc<[u64]>,
    weight: f64,
    /// A hash of the units, so that comparing and hashing the function (which planners
    /// do often) need not walk every unit.
    fingerprint: u64,
}

impl UnitRows {
    pub(super) fn new(rows: Arc<[u64]>, weight: f64) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        rows.hash(&mut h);
        weight.to_bits().hash(&mut h);
        let fingerprint = h.finish();
        UnitRows {
            rows,
            weight,
            fingerprint,
        }
    }

    /// The calibration's totals over these units (see `calibration_totals`).
    pub(super) fn totals(&self) -> (f64, f64) {
        let rows = self.rows.iter().map(|r| *r as f64).sum();
        let squared = self.rows.iter().map(|r| (*r as f64) * (*r as f64)).sum();
        calibration_totals(rows, squared, self.weight)
    }

    /// `sluice_unit_weighted_rows(unit)`: X of the unit numbered `unit` (the sample's
    /// unit column); NULL for NULL or for a number that is no unit
    /// of this sample.
    pub(super) fn call(&self, unit: Expr) -> Expr {
        Arc::new(ScalarUDF::new_from_impl(self.function())).call(vec![unit])
    }

    fn function(&self) -> WeightedRows {
        WeightedRows {
            units: self.clone(),
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

#[derive(Debug)]
struct WeightedRows {
    units: UnitRows,
    signature: Signature,
}

impl PartialEq for WeightedRows {
    fn eq(&self, other: &Self) -> bool {
        self.units.fingerprint == other.units.fingerprint
            && self.units.weight.to_bits() == other.units.weight.to_bits()
            && (Arc::ptr_eq(&self.units.rows, &other.units.rows)
                || self.units.rows == other.units.rows)
    }
}

impl Eq for WeightedRows {}

impl Hash for WeightedRows {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.units.fingerprint.hash(state);
    }
}

impl ScalarUDFImpl for WeightedRows {
    fn name(&self) -> &str {
        "sluice_unit_weighted_rows"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.len() != 1 {
            return exec_err!("{} takes 1 argument", self.name());
        }
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // The unit column is a number (`scan::units`); anything that casts to one is
        // taken, and what does not (NULL after the cast) is no unit.
        let numbers = cast_array(&arrays[0], &DataType::UInt64)?;
        let numbers = numbers.as_primitive::<UInt64Type>();
        let (rows, weight) = (&self.units.rows, self.units.weight);
        let out: Float64Array = (0..numbers.len())
            .map(|i| {
                if numbers.is_null(i) {
                    return None;
                }
                let unit = usize::try_from(numbers.value(i)).ok()?;
                rows.get(unit).map(|r| *r as f64 * weight)
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{DictionaryArray, StringArray, UInt64Array};
    use datafusion::arrow::datatypes::{Field, UInt16Type};
    use datafusion::config::ConfigOptions;

    fn run(units: &UnitRows, input: Arc<dyn Array>) -> Vec<Option<f64>> {
        let udf = units.function();
        let n = input.len();
        let out = udf
            .invoke_with_args(ScalarFunctionArgs {
                arg_fields: vec![Arc::new(Field::new("u", input.data_type().clone(), true))],
                args: vec![ColumnarValue::Array(input)],
                number_rows: n,
                return_field: Arc::new(Field::new("x", DataType::Float64, true)),
                config_options: Arc::new(ConfigOptions::default()),
            })
            .unwrap();
        let ColumnarValue::Array(a) = out else {
            panic!("an array")
        };
        a.as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .iter()
            .collect()
    }

    #[test]
    fn looks_up_each_unit_and_gives_null_for_what_is_no_unit() {
        let units = UnitRows::new(Arc::from(vec![1000u64, 0, 250]), 10.0);
        let (estimated_rows, squares) = units.totals();
        assert_eq!(estimated_rows, 12_500.0);
        assert_eq!(squares, 0.9 * (10_000.0f64.powi(2) + 2_500.0f64.powi(2)));
        let text = StringArray::from(vec![Some("2"), None, Some("0"), Some("3"), Some("x")]);
        assert_eq!(
            run(&units, Arc::new(text)),
            vec![Some(2500.0), None, Some(10_000.0), None, None]
        );
        // Text that casts to a number, dictionary-encoded or not, is taken too.
        let dict: DictionaryArray<UInt16Type> = vec!["1", "2"].into_iter().collect();
        assert_eq!(run(&units, Arc::new(dict)), vec![Some(0.0), Some(2500.0)]);
        let numbers = UInt64Array::from(vec![Some(2), None, Some(7)]);
        assert_eq!(
            run(&units, Arc::new(numbers)),
            vec![Some(2500.0), None, None]
        );
    }

    #[test]
    fn functions_of_the_same_units_are_equal() {
        let a = UnitRows::new(Arc::from(vec![5u64, 6]), 4.0);
        let b = UnitRows::new(Arc::from(vec![5u64, 6]), 4.0);
        let c = UnitRows::new(Arc::from(vec![5u64, 7]), 4.0);
        let col = || datafusion::prelude::col("u");
        assert_eq!(a.call(col()), b.call(col()));
        assert_ne!(a.call(col()), c.call(col()));
    }
}
