//! [`AnyValue`]: DataFusion's `any_value` aggregate with a groups accumulator, which
//! Sluice's sessions register in its place (`settings::with_sluice_functions`).
//!
//! Why: DataFusion 55's `any_value` has only a row accumulator, so a hash aggregate
//! wraps it in `GroupsAccumulatorAdapter`: one boxed accumulator, one `ScalarValue` and
//! a slice of the input per group and per batch. Sessionization groups by a
//! high-cardinality key (`GROUP BY session_id` with `any_value(user_id)`, 250,000
//! sessions in 1.5 M events) and spent most of its time in that adapter's allocations:
//! the web-analytics suite's w02 and w08 took 4–5.5× DuckDB's time.
//!
//! How: each group keeps where its value is (a chunk and a row), not the value. A batch
//! adds one chunk: the values of the groups that had none before it, taken from the
//! batch in one `take`; `evaluate` gathers every group's value with one `interleave`.
//!
//! Sound: the answer is exactly DataFusion's. A group's value is the first non-NULL
//! value of its rows in input order, a merge keeps the first state that has a value,
//! and the state is the same pair of columns (`any_value`, `any_value_is_set`), so a
//! plan may mix this accumulator and DataFusion's (a Ballista executor has only
//! DataFusion's). Tests compare the two on batches with NULLs, filters, merges,
//! emissions of the first groups and every column type the suites use.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{interleave, take};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{Result, internal_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature,
};

/// The name Sluice's function replaces, and the name `SLUICE_SKIP_RULES` takes to leave
/// DataFusion's in place.
pub const SKIP_NAME: &str = "sluice_any_value";

/// `any_value(x)`: an arbitrary (the first seen) non-NULL value of a group, NULL when it
/// has none. DataFusion's function, and a groups accumulator (see the module's
/// documentation).
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct AnyValue {
    inner: datafusion::functions_aggregate::any_value::AnyValue,
}

impl AggregateUDFImpl for AnyValue {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.return_field(arg_fields)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(args)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        flat(args.return_field.data_type())
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(AnyValueGroups::new(
            args.return_field.data_type().clone(),
        )))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Whether values of `data_type` own their buffers once taken from a batch (string views
/// after `compact`): a dictionary or a nested value would share its batch's dictionary or
/// children, counted again in each chunk's size. Those keep DataFusion's accumulator.
fn flat(data_type: &DataType) -> bool {
    data_type.is_primitive()
        || matches!(
            data_type,
            DataType::Null
                | DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
        )
}

/// No value yet: a group's slot before it has seen a non-NULL value.
const UNSET: (u32, u32) = (u32::MAX, u32::MAX);

/// The groups' values: per group, the chunk and row its value is at (`UNSET` if none).
struct AnyValueGroups {
    data_type: DataType,
    slots: Vec<(u32, u32)>,
    chunks: Vec<ArrayRef>,
    /// The rows the chunks hold, and their memory, kept as chunks come and go (`size`
    /// is called once a batch and must not walk them).
    chunk_rows: usize,
    chunk_bytes: usize,
}

impl AnyValueGroups {
    fn new(data_type: DataType) -> Self {
        Self {
            data_type,
            slots: Vec::new(),
            chunks: Vec::new(),
            chunk_rows: 0,
            chunk_bytes: 0,
        }
    }

    /// Gives each group of `group_indices` that has no value yet the value of its first
    /// row that `usable` keeps and whose value is not NULL.
    fn absorb(
        &mut self,
        values: &ArrayRef,
        group_indices: &[usize],
        usable: impl Fn(usize) -> bool,
        total_num_groups: usize,
    ) -> Result<()> {
        self.slots.resize(total_num_groups, UNSET);
        let chunk = match u32::try_from(self.chunks.len()) {
            Ok(c) if c < u32::MAX => c,
            _ => return internal_err!("any_value: too many chunks"),
        };
        let mut rows: Vec<u32> = Vec::new();
        for (row, &group) in group_indices.iter().enumerate() {
            if self.slots[group] == UNSET && values.is_valid(row) && usable(row) {
                let (Ok(at), Ok(row)) = (u32::try_from(rows.len()), u32::try_from(row)) else {
                    return internal_err!("any_value: a batch of over 2^32 rows");
                };
                self.slots[group] = (chunk, at);
                rows.push(row);
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let taken = take(values.as_ref(), &UInt32Array::from(rows), None)?;
        self.push_chunk(compact(taken));
        Ok(())
    }

    fn push_chunk(&mut self, chunk: ArrayRef) {
        self.chunk_rows += chunk.len();
        self.chunk_bytes += chunk.get_array_memory_size();
        self.chunks.push(chunk);
    }

    /// The values of the first groups `emit_to` names, in group order (NULL where a
    /// group has none), removed from the state.
    fn emit(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let emitted = emit_to.take_needed(&mut self.slots);
        let values = self.gather(&emitted)?;
        if self.slots.is_empty() {
            self.chunks.clear();
            self.chunk_rows = 0;
            self.chunk_bytes = 0;
        } else if self.chunk_rows > 2 * self.slots.len() + 1024 {
            // Groups left after emitting the first ones: once the chunks hold mostly
            // emitted values, the values still needed move to one chunk of their own.
            let set: Vec<(u32, u32)> = self.slots.iter().copied().filter(|s| *s != UNSET).collect();
            let kept = self.gather(&set)?;
            self.chunks.clear();
            self.chunk_rows = 0;
            self.chunk_bytes = 0;
            for (at, slot) in self.slots.iter_mut().filter(|s| **s != UNSET).enumerate() {
                let Ok(at) = u32::try_from(at) else {
                    return internal_err!("any_value: over 2^32 groups with a value");
                };
                *slot = (0, at);
            }
            self.push_chunk(compact(kept));
        }
        Ok(values)
    }

    /// The values `slots` point at, NULL for an unset slot.
    fn gather(&self, slots: &[(u32, u32)]) -> Result<ArrayRef> {
        let null = new_null_array(&self.data_type, 1);
        let mut sources: Vec<&dyn Array> = Vec::with_capacity(self.chunks.len() + 1);
        sources.push(null.as_ref());
        sources.extend(self.chunks.iter().map(|c| c.as_ref()));
        let indices: Vec<(usize, usize)> = slots
            .iter()
            .map(|&(chunk, row)| {
                if (chunk, row) == UNSET {
                    (0, 0)
                } else {
                    (chunk as usize + 1, row as usize)
                }
            })
            .collect();
        Ok(interleave(&sources, &indices)?)
    }
}

/// `array` without the buffers of the batch it was taken from: a string view array taken
/// from a batch shares that batch's data buffers, which a group's value must not keep
/// alive.
fn compact(array: ArrayRef) -> ArrayRef {
    match array.data_type() {
        DataType::Utf8View => Arc::new(array.as_string_view().gc()),
        DataType::BinaryView => Arc::new(array.as_binary_view().gc()),
        _ => array,
    }
}

impl GroupsAccumulator for AnyValueGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let Some(values) = values.first() else {
            return internal_err!("any_value takes one argument");
        };
        match opt_filter {
            None => self.absorb(values, group_indices, |_| true, total_num_groups),
            Some(filter) => self.absorb(
                values,
                group_indices,
                |row| filter.is_valid(row) && filter.value(row),
                total_num_groups,
            ),
        }
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.emit(emit_to)
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let values = self.emit(emit_to)?;
        let is_set = is_valid(&values);
        Ok(vec![values, Arc::new(is_set)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        let [values, is_set] = values else {
            return internal_err!("any_value's state is two columns");
        };
        let is_set = is_set.as_boolean();
        if is_set.null_count() > 0 {
            return internal_err!("any_value's is_set flags must not be NULL");
        }
        self.absorb(
            values,
            group_indices,
            |row| is_set.value(row),
            total_num_groups,
        )
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let Some(values) = values.first() else {
            return internal_err!("any_value takes one argument");
        };
        let mut is_set = BooleanBufferBuilder::new(values.len());
        for row in 0..values.len() {
            let kept = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            is_set.append(kept && values.is_valid(row));
        }
        Ok(vec![
            Arc::clone(values),
            Arc::new(BooleanArray::new(is_set.finish(), None)),
        ])
    }

    fn size(&self) -> usize {
        self.slots.capacity() * size_of::<(u32, u32)>()
            + self.chunks.capacity() * size_of::<ArrayRef>()
            + self.chunk_bytes
    }
}

/// `true` where `values` has a value (physically, as `absorb` reads it).
fn is_valid(values: &ArrayRef) -> BooleanArray {
    match values.nulls() {
        Some(nulls) => BooleanArray::new(nulls.inner().clone(), None),
        None => BooleanArray::from(vec![true; values.len()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::functions_aggregate::first_last::TrivialFirstValueAccumulator;
    use datafusion::logical_expr::AggregateUDF;
    use datafusion::physical_expr::GroupsAccumulatorAdapter;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// A small deterministic generator (xorshift), so a failure replays.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    /// DataFusion's own `any_value`, as a hash aggregate runs it.
    fn datafusion_groups(data_type: &DataType) -> GroupsAccumulatorAdapter {
        let data_type = data_type.clone();
        GroupsAccumulatorAdapter::new(move || {
            Ok(Box::new(TrivialFirstValueAccumulator::try_new(
                &data_type, true,
            )?))
        })
    }

    /// `len` values of `data_type` (from integers below 50, a fifth NULL).
    fn values(rng: &mut Rng, len: usize, data_type: &DataType) -> ArrayRef {
        let ints: Int64Array = (0..len)
            .map(|_| (rng.below(5) != 0).then(|| rng.below(50) as i64))
            .collect();
        let ints: ArrayRef = Arc::new(ints);
        match data_type {
            DataType::Dictionary(_, _) => {
                cast(&cast(&ints, &DataType::Utf8).unwrap(), data_type).unwrap()
            }
            _ => cast(&ints, data_type).unwrap(),
        }
    }

    fn same(ours: &ArrayRef, theirs: &ArrayRef, what: &str) {
        assert_eq!(
            ours.to_data(),
            theirs.to_data(),
            "{what}: {ours:?} against {theirs:?}"
        );
    }

    const TYPES: [DataType; 6] = [
        DataType::Int64,
        DataType::Float64,
        DataType::Boolean,
        DataType::Utf8,
        DataType::Utf8View,
        DataType::LargeUtf8,
    ];

    /// Updates (with and without filters), emissions of the first groups, states merged
    /// into a final accumulator and rows turned into states: the same values as
    /// DataFusion's accumulator at every step.
    #[test]
    fn answers_as_datafusions_accumulator() {
        let types = TYPES.iter().cloned().chain([DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8),
        )]);
        for data_type in types {
            for seed in 1..=20u64 {
                let rng = &mut Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let what = format!("{data_type} seed {seed}");
                let mut ours = AnyValueGroups::new(data_type.clone());
                let mut theirs = datafusion_groups(&data_type);
                let mut final_ours = AnyValueGroups::new(data_type.clone());
                let mut final_theirs = datafusion_groups(&data_type);
                let mut groups = 0usize;
                for _ in 0..30 {
                    groups += rng.below(8) as usize;
                    let len = rng.below(40) as usize;
                    let batch = values(rng, len, &data_type);
                    let indices: Vec<usize> = (0..len)
                        .map(|_| rng.below(groups.max(1) as u64) as usize)
                        .collect();
                    let total = if len == 0 { groups } else { groups.max(1) };
                    let filter: Option<BooleanArray> = (rng.below(3) == 0).then(|| {
                        (0..len)
                            .map(|_| (rng.below(6) != 0).then(|| rng.below(2) == 0))
                            .collect()
                    });
                    let values = std::slice::from_ref(&batch);
                    ours.update_batch(values, &indices, filter.as_ref(), total)
                        .unwrap();
                    theirs
                        .update_batch(values, &indices, filter.as_ref(), total)
                        .unwrap();
                    groups = total;
                    same(
                        &ours.convert_to_state(values, filter.as_ref()).unwrap()[1],
                        &theirs.convert_to_state(values, filter.as_ref()).unwrap()[1],
                        &format!("{what}: rows as states"),
                    );
                    match rng.below(4) {
                        // The first groups leave as values (a sorted input's groups).
                        0 if groups > 0 => {
                            let n = rng.below(groups as u64) as usize + 1;
                            same(
                                &ours.evaluate(EmitTo::First(n)).unwrap(),
                                &theirs.evaluate(EmitTo::First(n)).unwrap(),
                                &format!("{what}: first {n} of {groups}"),
                            );
                            groups -= n;
                        }
                        // Or as states, merged into a final accumulator.
                        1 if groups > 0 => {
                            let n = rng.below(groups as u64) as usize + 1;
                            let state = ours.state(EmitTo::First(n)).unwrap();
                            let reference = theirs.state(EmitTo::First(n)).unwrap();
                            same(&state[0], &reference[0], &format!("{what}: state"));
                            same(&state[1], &reference[1], &format!("{what}: is_set"));
                            groups -= n;
                            let into: Vec<usize> = (0..n).map(|_| rng.below(12) as usize).collect();
                            final_ours.merge_batch(&state, &into, 12).unwrap();
                            final_theirs.merge_batch(&reference, &into, 12).unwrap();
                        }
                        _ => {}
                    }
                    assert!(ours.size() > 0 || groups == 0);
                }
                // (DataFusion's adapter cannot evaluate no groups at all.)
                if groups > 0 {
                    same(
                        &ours.evaluate(EmitTo::All).unwrap(),
                        &theirs.evaluate(EmitTo::All).unwrap(),
                        &format!("{what}: all"),
                    );
                }
                if !final_ours.slots.is_empty() {
                    same(
                        &final_ours.evaluate(EmitTo::All).unwrap(),
                        &final_theirs.evaluate(EmitTo::All).unwrap(),
                        &format!("{what}: merged"),
                    );
                }
            }
        }
    }

    /// Dictionaries and nested values keep DataFusion's accumulator (see `flat`).
    #[test]
    fn only_flat_types_take_the_groups_accumulator() {
        for data_type in TYPES {
            assert!(flat(&data_type), "{data_type}");
        }
        let dictionary = DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8));
        let list = DataType::new_list(DataType::Utf8View, true);
        assert!(!flat(&dictionary) && !flat(&list));
    }

    /// Emitting the first groups again and again (a sorted input) keeps only the values
    /// of the groups left, not every chunk since the start.
    #[test]
    fn emitting_the_first_groups_releases_their_values() {
        let mut acc = AnyValueGroups::new(DataType::Utf8View);
        let long: ArrayRef = Arc::new(datafusion::arrow::array::StringViewArray::from_iter_values(
            (0..1000).map(|i| format!("a value longer than twelve bytes {i}")),
        ));
        for round in 0..50usize {
            let indices: Vec<usize> = (0..1000).map(|i| 10 + i / 100).collect();
            acc.update_batch(std::slice::from_ref(&long), &indices, None, 20)
                .unwrap();
            let out = acc.evaluate(EmitTo::First(10)).unwrap();
            assert_eq!(out.len(), 10, "round {round}");
        }
        assert!(acc.chunk_rows <= 2 * acc.slots.len() + 1024 + 10);
        assert!(acc.size() < 200_000, "{} bytes held", acc.size());
    }

    /// Through SQL: every type of `TYPES` grouped over several partitions, with the
    /// partial aggregate skipped after its first rows too, answers as DataFusion's
    /// function (each group's values are equal or NULL, so any one is the answer).
    #[tokio::test]
    async fn a_query_answers_as_with_datafusions_function() {
        let rng = &mut Rng(42);
        for data_type in TYPES {
            let partitions: Vec<Vec<RecordBatch>> = (0..4)
                .map(|_| {
                    (0..3)
                        .map(|_| {
                            let groups: Int64Array =
                                (0..500).map(|_| rng.below(300) as i64).collect();
                            let ints: Int64Array = groups
                                .iter()
                                .map(|g| g.filter(|g| g % 7 != 0 && rng.below(3) != 0))
                                .collect();
                            let ints: ArrayRef = Arc::new(ints);
                            RecordBatch::try_from_iter([
                                ("g", Arc::new(groups) as ArrayRef),
                                ("v", cast(&ints, &data_type).unwrap()),
                            ])
                            .unwrap()
                        })
                        .collect()
                })
                .collect();
            let schema = Arc::new(Schema::new(vec![
                Field::new("g", DataType::Int64, true),
                Field::new("v", data_type.clone(), true),
            ]));
            let sql = "SELECT g, any_value(v) AS v, count(*) AS n FROM t GROUP BY g ORDER BY g";
            let mut answers = Vec::new();
            for (ours, skip_partial) in [(false, false), (true, false), (true, true)] {
                let mut config = SessionConfig::new().with_target_partitions(4);
                if skip_partial {
                    let options = config.options_mut();
                    options
                        .execution
                        .skip_partial_aggregation_probe_rows_threshold = 100;
                    options
                        .execution
                        .skip_partial_aggregation_probe_ratio_threshold = 0.1;
                }
                let ctx = SessionContext::new_with_config(config);
                if ours {
                    ctx.register_udaf(AggregateUDF::new_from_impl(AnyValue::default()));
                }
                let table = MemTable::try_new(schema.clone(), partitions.clone()).unwrap();
                ctx.register_table("t", Arc::new(table)).unwrap();
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                answers.push(
                    datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                        .unwrap()
                        .to_string(),
                );
            }
            assert_eq!(answers[0], answers[1], "{data_type}");
            assert_eq!(
                answers[0], answers[2],
                "{data_type}, partial aggregate skipped"
            );
        }
    }
}
