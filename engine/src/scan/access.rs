//! Row-level sampling as Parquet access plans: which row groups, and which rows inside
//! them, a scan reads. Because the plan is handed to DataFusion's Parquet reader, the
//! rows that are not sampled are never fetched or decoded: bytes read fall with the
//! fraction.
//!
//! Decisions depend only on the seed, each file's path relative to its source folder and
//! its row-group layout, so the same files sample the same rows in every store.

use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::parquet::arrow::arrow_reader::{RowSelection, RowSelector};

use super::hash::{SplitMix, combine, hash_bytes, unit_interval};
use crate::project::sampling::SamplePolicy;

/// The smallest row range `system` sampling selects inside a row group.
const MIN_BLOCK_ROWS: u64 = 64;
/// `system` cuts each file into units small enough that it keeps about this many of
/// them, spread evenly over the file: a file sorted by time keeps every stretch of time
/// in proportion, not a few whole stretches.
const UNITS_PER_FILE: f64 = 8.0;

/// One Parquet file of a source, as far as sampling needs to know it.
#[derive(Debug, Clone)]
pub struct FileLayout {
    /// Path relative to the source folder; the sampling identity of the file.
    pub relative_path: String,
    /// Rows in each row group, in file order.
    pub row_groups: Vec<u64>,
    /// First row of each data page of the file's first column, per row group, when the
    /// file has a page index: `system` cuts row groups at page boundaries so a sampled
    /// range does not drag in half-used pages.
    pub page_starts: Vec<Vec<u64>>,
}

/// The access plan of each file (same order as the input) and how many rows it keeps.
#[derive(Debug, Clone)]
pub struct SamplePlan {
    pub files: Vec<ParquetAccessPlan>,
    pub rows_total: u64,
    pub rows_selected: u64,
    /// For `system`: the units each file keeps, in file order. Every unit of a file is
    /// kept with probability `fraction` (systematic selection from a seeded start), the
    /// sampling design estimates rely on.
    pub units: Vec<Vec<SampledUnit>>,
}

/// One unit a `system` sample keeps: rows [start, start + len) of a row group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampledUnit {
    pub row_group: usize,
    pub start: u64,
    pub len: u64,
}

impl SampledUnit {
    /// The access plan that reads only this unit of a file with `row_groups`.
    pub fn access_plan(&self, row_groups: &[u64]) -> ParquetAccessPlan {
        let mut plan = ParquetAccessPlan::new_none(row_groups.len());
        let rows = row_groups[self.row_group];
        if self.start == 0 && self.len >= rows {
            plan.scan(self.row_group);
        } else {
            plan.set(
                self.row_group,
                RowGroupAccess::Selection(ranges_to_selection(&[(self.start, self.len)], rows)),
            );
        }
        plan
    }
}

// Note: `ParquetAccessPlan::scan_selection` narrows a group that is already scanned and
// ignores a skipped one, so selections are set with `set(…, Selection(…))`.

/// Builds the access plans of a `system`, `bernoulli` or `rows` policy.
/// Returns `None` for `key`, which is a filter, not an access plan.
pub fn plan(policy: &SamplePolicy, files: &[FileLayout]) -> Option<SamplePlan> {
    let rows_total: u64 = files.iter().flat_map(|f| f.row_groups.iter()).sum();
    let mut units = Vec::new();
    let plan = match policy {
        SamplePolicy::System { fraction, seed } => {
            units = system_units(*fraction, *seed, files);
            files
                .iter()
                .zip(&units)
                .map(|(f, kept)| file_plan(f, kept))
                .collect()
        }
        SamplePolicy::Bernoulli { fraction, seed } => bernoulli(*fraction, *seed, files),
        SamplePolicy::Rows { rows, seed } => cap_rows(*rows, *seed, files),
        SamplePolicy::Key { .. } => return None,
    };
    let rows_selected = plan
        .iter()
        .zip(files)
        .map(|(p, f)| selected_rows(p, &f.row_groups))
        .sum();
    Some(SamplePlan {
        files: plan,
        rows_total,
        rows_selected,
        units,
    })
}

/// The units a `system` sample keeps in each file. Each file is cut into units of about
/// `rows / (UNITS_PER_FILE / fraction)` rows (at least `MIN_BLOCK_ROWS` where the
/// file's sample holds that many) that never split what a read fetches whole: pages where the file has a page index, else whole
/// row groups, cut only when the whole sample is smaller than an average group (then no
/// group could be read whole). Every `1/fraction`-th unit is kept (see below), so a file
/// sorted by time keeps each stretch of time in proportion as far as its units allow.
fn system_units(fraction: f64, seed: u64, files: &[FileLayout]) -> Vec<Vec<SampledUnit>> {
    // Whole row groups when an average group is no bigger than the whole sample: the
    // sample then reads whole groups, and its bytes fall with the fraction.
    let all_rows: u64 = files.iter().flat_map(|f| f.row_groups.iter()).sum();
    let all_groups = files
        .iter()
        .flat_map(|f| f.row_groups.iter())
        .filter(|r| **r > 0)
        .count() as u64;
    let whole_groups =
        all_groups > 0 && (all_rows / all_groups) as f64 <= fraction * all_rows as f64;
    let per_file: Vec<Vec<SampledUnit>> = files
        .iter()
        .map(|f| {
            let rows: u64 = f.row_groups.iter().sum();
            let groups = f.row_groups.iter().filter(|r| **r > 0).count() as u64;
            if fraction >= 1.0 || groups == 0 {
                return f
                    .row_groups
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| **r > 0)
                    .map(|(gi, r)| SampledUnit {
                        row_group: gi,
                        start: 0,
                        len: *r,
                    })
                    .collect();
            }
            let wanted = (UNITS_PER_FILE / fraction).ceil();
            let ideal = ((rows as f64 / wanted).ceil() as u64).max(1);
            // Blocks of at least MIN_BLOCK_ROWS, unless the file's whole sample is
            // smaller than one (a dimension, a first ingest): then it is cut finer, or a
            // 10% sample of 300 rows would be one block of 64 kept or not, most often
            // nothing at all.
            let unit_rows = if rows as f64 * fraction >= MIN_BLOCK_ROWS as f64 {
                ideal.max(MIN_BLOCK_ROWS)
            } else {
                ideal
            };
            let mut units = Vec::new();
            for (gi, &group_rows) in f.row_groups.iter().enumerate() {
                if group_rows == 0 {
                    continue;
                }
                let pages = f.page_starts.get(gi).filter(|p| p.len() > 1);
                let ranges = match pages {
                    Some(starts) => page_units(group_rows, unit_rows, starts),
                    None if whole_groups || group_rows <= unit_rows => vec![(0, group_rows)],
                    None => blocks(group_rows, unit_rows),
                };
                units.extend(ranges.into_iter().map(|(start, len)| SampledUnit {
                    row_group: gi,
                    start,
                    len,
                }));
            }
            units
        })
        .collect();
    // Systematic selection over the source's units, file after file in path order: the
    // points start + j * step, j = 0, 1, …, with a start drawn from the seed; unit i is
    // kept when a point falls in [i, i + 1). Every unit is kept with probability
    // `fraction`, the sample keeps `fraction` of the units to within one, and the kept
    // ones are spread evenly over every file.
    let step = 1.0 / fraction;
    let start = unit_interval(hash_bytes(seed, b"system")) * step;
    let points_below = |x: f64| {
        if x <= start {
            0.0
        } else {
            ((x - start) / step).ceil()
        }
    };
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|a, b| files[*a].relative_path.cmp(&files[*b].relative_path));
    let mut kept: Vec<Vec<SampledUnit>> = vec![Vec::new(); files.len()];
    let mut i = 0u64;
    for fi in order {
        for u in &per_file[fi] {
            if points_below(i as f64 + 1.0) > points_below(i as f64) {
                kept[fi].push(*u);
            }
            i += 1;
        }
    }
    kept
}

/// Consecutive pages of a row group merged into ranges of at least `unit` rows (the last
/// range takes what is left): a range that reads part of a page would decode all of it.
fn page_units(rows: u64, unit: u64, page_starts: &[u64]) -> Vec<(u64, u64)> {
    let mut cuts = vec![0u64];
    for &s in page_starts.iter().skip(1) {
        if s < rows && s - cuts.last().copied().unwrap_or(0) >= unit {
            cuts.push(s);
        }
    }
    cuts.push(rows);
    cuts.windows(2)
        .map(|w| (w[0], w[1] - w[0]))
        .filter(|(_, len)| *len > 0)
        .collect()
}

/// The access plan of one file that reads its `kept` units.
fn file_plan(f: &FileLayout, kept: &[SampledUnit]) -> ParquetAccessPlan {
    let mut plan = ParquetAccessPlan::new_none(f.row_groups.len());
    let mut gi = 0;
    while gi < f.row_groups.len() {
        let ranges: Vec<(u64, u64)> = kept
            .iter()
            .filter(|u| u.row_group == gi)
            .map(|u| (u.start, u.len))
            .collect();
        let rows = f.row_groups[gi];
        let covered: u64 = ranges.iter().map(|r| r.1).sum();
        if !ranges.is_empty() {
            if covered >= rows {
                plan.scan(gi);
            } else {
                plan.set(
                    gi,
                    RowGroupAccess::Selection(ranges_to_selection(&ranges, rows)),
                );
            }
        }
        gi += 1;
    }
    plan
}

/// Cuts a row group of `rows` rows into ranges of `block` rows; a remainder under half
/// a block joins the last range.
fn blocks(rows: u64, block: u64) -> Vec<(u64, u64)> {
    let block = block.max(1);
    let mut cuts = vec![0u64];
    let mut at = block;
    while at + block / 2 < rows {
        cuts.push(at);
        at += block;
    }
    cuts.push(rows);
    cuts.windows(2)
        .map(|w| (w[0], w[1] - w[0]))
        .filter(|(_, len)| *len > 0)
        .collect()
}

fn ranges_to_selection(ranges: &[(u64, u64)], rows: u64) -> RowSelection {
    let mut selectors = Vec::new();
    let mut pos = 0u64;
    for &(start, len) in ranges {
        if start > pos {
            selectors.push(RowSelector::skip((start - pos) as usize));
        }
        selectors.push(RowSelector::select(len as usize));
        pos = start + len;
    }
    if pos < rows {
        selectors.push(RowSelector::skip((rows - pos) as usize));
    }
    RowSelection::from(selectors)
}

fn bernoulli(fraction: f64, seed: u64, files: &[FileLayout]) -> Vec<ParquetAccessPlan> {
    files
        .iter()
        .map(|f| {
            let mut plan = ParquetAccessPlan::new_none(f.row_groups.len());
            if fraction >= 1.0 {
                return ParquetAccessPlan::new_all(f.row_groups.len());
            }
            let mut rng = SplitMix::new(hash_bytes(seed, f.relative_path.as_bytes()));
            // Gaps between kept rows are geometric: one draw per kept row, not per row.
            let log_q = (1.0 - fraction).ln();
            let mut gap = || (rng.next_open01().ln() / log_q).floor() as u64;
            let mut next = gap();
            let mut group_start = 0u64;
            for (gi, &rows) in f.row_groups.iter().enumerate() {
                let group_end = group_start + rows;
                let mut selectors: Vec<RowSelector> = Vec::new();
                let mut pos = group_start;
                let mut kept = 0u64;
                while next < group_end {
                    if next > pos {
                        selectors.push(RowSelector::skip((next - pos) as usize));
                    }
                    match selectors.last_mut() {
                        Some(last) if !last.skip => last.row_count += 1,
                        _ => selectors.push(RowSelector::select(1)),
                    }
                    kept += 1;
                    pos = next + 1;
                    next = pos + gap();
                }
                if kept > 0 {
                    if pos < group_end {
                        selectors.push(RowSelector::skip((group_end - pos) as usize));
                    }
                    if kept == rows {
                        plan.scan(gi);
                    } else {
                        plan.set(gi, RowGroupAccess::Selection(RowSelection::from(selectors)));
                    }
                }
                group_start = group_end;
            }
            plan
        })
        .collect()
}

fn cap_rows(cap: u64, seed: u64, files: &[FileLayout]) -> Vec<ParquetAccessPlan> {
    let mut groups: Vec<(u64, usize, usize)> = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        let file_hash = hash_bytes(seed, f.relative_path.as_bytes());
        for gi in 0..f.row_groups.len() {
            groups.push((combine(file_hash, gi as u64), fi, gi));
        }
    }
    groups.sort();
    let mut plans: Vec<ParquetAccessPlan> = files
        .iter()
        .map(|f| ParquetAccessPlan::new_none(f.row_groups.len()))
        .collect();
    let mut left = cap;
    for (_, fi, gi) in groups {
        if left == 0 {
            break;
        }
        let rows = files[fi].row_groups[gi];
        if rows == 0 {
            continue;
        }
        if rows <= left {
            plans[fi].scan(gi);
            left -= rows;
        } else {
            plans[fi].set(
                gi,
                RowGroupAccess::Selection(RowSelection::from(vec![
                    RowSelector::select(left as usize),
                    RowSelector::skip((rows - left) as usize),
                ])),
            );
            left = 0;
        }
    }
    plans
}

/// Rows an access plan keeps.
pub fn selected_rows(plan: &ParquetAccessPlan, row_groups: &[u64]) -> u64 {
    plan.inner()
        .iter()
        .zip(row_groups)
        .map(|(access, rows)| match access {
            RowGroupAccess::Skip => 0,
            RowGroupAccess::Scan => *rows,
            RowGroupAccess::Selection(s) => s.row_count() as u64,
        })
        .sum()
}

/// Whether a sample keeps roughly its fraction: used by tests and by `sources`.
pub fn kept_fraction(plan: &SamplePlan) -> f64 {
    if plan.rows_total == 0 {
        return 1.0;
    }
    plan.rows_selected as f64 / plan.rows_total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(files: usize, groups: usize, rows: u64) -> Vec<FileLayout> {
        (0..files)
            .map(|i| FileLayout {
                relative_path: format!("part-{i}.parquet"),
                row_groups: vec![rows; groups],
                page_starts: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn system_keeps_units_spread_over_every_file() {
        // 4 files of 50 groups of 1,000 rows at 10%: each file keeps every tenth group,
        // from a start of its own.
        let files = layout(4, 50, 1000);
        let p = plan(
            &SamplePolicy::System {
                fraction: 0.1,
                seed: 1,
            },
            &files,
        )
        .unwrap();
        assert_eq!(p.rows_selected, 20_000);
        for kept in &p.units {
            assert_eq!(kept.len(), 5);
            let groups: Vec<usize> = kept.iter().map(|u| u.row_group).collect();
            for w in groups.windows(2) {
                assert_eq!(w[1] - w[0], 10, "{groups:?}");
            }
        }
        // At 1% of 200 groups the sample is two groups: whole groups, each file keeping
        // one with probability 1/2, so the bytes read fall with the fraction.
        let p = plan(
            &SamplePolicy::System {
                fraction: 0.01,
                seed: 1,
            },
            &files,
        )
        .unwrap();
        for kept in &p.units {
            assert!(kept.len() <= 1, "{kept:?}");
            assert!(kept.iter().all(|u| u.start == 0 && u.len == 1000));
        }
        // A file holding one large group is cut into units spread over it.
        let big = layout(1, 1, 100_000);
        let p = plan(
            &SamplePolicy::System {
                fraction: 0.01,
                seed: 1,
            },
            &big,
        )
        .unwrap();
        assert!((7..=9).contains(&p.units[0].len()), "{:?}", p.units[0]);
        assert!(p.units[0].last().unwrap().start - p.units[0][0].start >= 80_000);
    }

    #[test]
    fn every_system_unit_is_kept_with_the_fraction() {
        // Over many seeds, each unit of a file is kept about `fraction` of the time:
        // the inclusion probability estimates rely on.
        // Two groups of 10,000 rows: a 30% sample of the file is smaller than a group, so
        // the groups are cut into ceil(8 / 0.3) = 27 units or so.
        let files = layout(1, 2, 10_000);
        let mut kept = std::collections::BTreeMap::<(usize, u64), u32>::new();
        let seeds = 4000;
        for seed in 0..seeds {
            let p = plan(
                &SamplePolicy::System {
                    fraction: 0.3,
                    seed,
                },
                &files,
            )
            .unwrap();
            for u in &p.units[0] {
                *kept.entry((u.row_group, u.start)).or_default() += 1;
            }
        }
        assert!(kept.len() >= 20, "{kept:?}");
        for k in kept.values() {
            let f = *k as f64 / seeds as f64;
            assert!((f - 0.3).abs() < 0.03, "{kept:?}");
        }
    }

    #[test]
    fn system_keeps_rows_of_a_file_smaller_than_a_block_per_sample() {
        // 300 rows in one group: 30 rows' worth at 10%, whatever the seed.
        let files = layout(1, 1, 300);
        for seed in 0..20 {
            let p = plan(
                &SamplePolicy::System {
                    fraction: 0.1,
                    seed,
                },
                &files,
            )
            .unwrap();
            let kept = (kept_fraction(&p) * 300.0).round() as u64;
            assert!((20..=40).contains(&kept), "seed {seed}: {kept} rows");
        }
    }

    #[test]
    fn system_splits_big_groups() {
        let files = layout(1, 1, 100_000);
        let p = plan(
            &SamplePolicy::System {
                fraction: 0.05,
                seed: 3,
            },
            &files,
        )
        .unwrap();
        let f = kept_fraction(&p);
        assert!((0.04..0.06).contains(&f), "{f}");
    }

    #[test]
    fn blocks_follow_page_boundaries() {
        let pages = vec![0, 100, 200, 300, 400, 500];
        assert_eq!(
            page_units(600, 150, &pages),
            vec![(0, 200), (200, 200), (400, 200)]
        );
        // Pages larger than a unit are never split.
        assert_eq!(page_units(600, 50, &[0, 400]), vec![(0, 400), (400, 200)]);
        // Without pages, cuts every block; a remainder under half a block joins the last.
        assert_eq!(blocks(250, 100), vec![(0, 100), (100, 150)]);
        assert_eq!(
            blocks(400, 100),
            vec![(0, 100), (100, 100), (200, 100), (300, 100)]
        );
    }

    #[test]
    fn same_seed_same_plan_other_seed_other_plan() {
        let files = layout(3, 40, 100);
        let a = plan(
            &SamplePolicy::System {
                fraction: 0.1,
                seed: 9,
            },
            &files,
        )
        .unwrap();
        let b = plan(
            &SamplePolicy::System {
                fraction: 0.1,
                seed: 9,
            },
            &files,
        )
        .unwrap();
        let c = plan(
            &SamplePolicy::System {
                fraction: 0.1,
                seed: 10,
            },
            &files,
        )
        .unwrap();
        assert_eq!(format!("{:?}", a.files), format!("{:?}", b.files));
        assert_ne!(format!("{:?}", a.files), format!("{:?}", c.files));
    }

    #[test]
    fn bernoulli_fraction_is_close() {
        let files = layout(2, 5, 20_000);
        let p = plan(
            &SamplePolicy::Bernoulli {
                fraction: 0.2,
                seed: 5,
            },
            &files,
        )
        .unwrap();
        let f = kept_fraction(&p);
        assert!((f - 0.2).abs() < 0.01, "{f}");
    }

    #[test]
    fn rows_caps_exactly() {
        let files = layout(2, 3, 1000);
        let p = plan(
            &SamplePolicy::Rows {
                rows: 2500,
                seed: 0,
            },
            &files,
        )
        .unwrap();
        assert_eq!(p.rows_selected, 2500);
        let p = plan(
            &SamplePolicy::Rows {
                rows: 10_000,
                seed: 0,
            },
            &files,
        )
        .unwrap();
        assert_eq!(p.rows_selected, 6000);
    }
}
