//! Row-level sampling as Parquet access plans: which row groups, and which rows inside
//! them, a scan reads. Because the plan is handed to DataFusion's Parquet reader, the
//! rows that are not sampled are never fetched or decoded: bytes read fall with the
//! fraction.
//!
//! Decisions depend only on the seed, each file's path relative to its source folder and
//! its row-group layout, so the same files sample the same rows in every store.

use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::parquet::arrow::arrow_reader::{RowSelection, RowSelector};

use super::hash::{SplitMix, combine, hash_bytes};
use crate::project::sampling::SamplePolicy;

/// The smallest row range `system` sampling selects inside a row group.
const MIN_BLOCK_ROWS: u64 = 64;
/// `system` aims for at least this many units in the sample when row groups are large,
/// so the kept fraction lands close to the asked one.
const UNITS_PER_SAMPLE: u64 = 8;

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
}

// Note: `ParquetAccessPlan::scan_selection` narrows a group that is already scanned and
// ignores a skipped one, so selections are set with `set(…, Selection(…))`.

/// Builds the access plans of a `system`, `bernoulli` or `rows` policy.
/// Returns `None` for `key`, which is a filter, not an access plan.
pub fn plan(policy: &SamplePolicy, files: &[FileLayout]) -> Option<SamplePlan> {
    let rows_total: u64 = files.iter().flat_map(|f| f.row_groups.iter()).sum();
    let plan = match policy {
        SamplePolicy::System { fraction, seed } => system(*fraction, *seed, files, rows_total),
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
    })
}

/// A unit of `system` sampling: rows [start, start + len) of one row group.
struct Unit {
    file: usize,
    row_group: usize,
    start: u64,
    len: u64,
    rank: u64,
}

fn system(
    fraction: f64,
    seed: u64,
    files: &[FileLayout],
    rows_total: u64,
) -> Vec<ParquetAccessPlan> {
    if fraction >= 1.0 {
        return files
            .iter()
            .map(|f| ParquetAccessPlan::new_all(f.row_groups.len()))
            .collect();
    }
    let target = ((fraction * rows_total as f64).ceil() as u64).max(1);
    // Whole row groups when an average group is no bigger than the sample; otherwise row
    // ranges small enough that the sample spans several of them.
    let groups: u64 = files.iter().map(|f| f.row_groups.len() as u64).sum();
    let whole_groups = groups > 0 && rows_total / groups <= target;
    let block = (target / UNITS_PER_SAMPLE).max(MIN_BLOCK_ROWS);

    let mut units = Vec::new();
    for (fi, f) in files.iter().enumerate() {
        let file_hash = hash_bytes(seed, f.relative_path.as_bytes());
        for (gi, &rows) in f.row_groups.iter().enumerate() {
            let group_hash = combine(file_hash, gi as u64);
            if whole_groups || rows <= block {
                units.push(Unit {
                    file: fi,
                    row_group: gi,
                    start: 0,
                    len: rows,
                    rank: group_hash,
                });
            } else {
                for (bi, (start, len)) in blocks(rows, block, f.page_starts.get(gi))
                    .into_iter()
                    .enumerate()
                {
                    units.push(Unit {
                        file: fi,
                        row_group: gi,
                        start,
                        len,
                        rank: combine(group_hash, bi as u64 + 1),
                    });
                }
            }
        }
    }
    units.sort_by_key(|u| (u.rank, u.file, u.row_group, u.start));
    let mut kept = 0u64;
    let mut chosen: Vec<&Unit> = Vec::new();
    for u in &units {
        if kept >= target {
            break;
        }
        if u.len == 0 {
            continue;
        }
        kept += u.len;
        chosen.push(u);
    }
    // Group the chosen ranges per file and row group.
    let mut ranges: Vec<Vec<Vec<(u64, u64)>>> = files
        .iter()
        .map(|f| vec![Vec::new(); f.row_groups.len()])
        .collect();
    for u in chosen {
        ranges[u.file][u.row_group].push((u.start, u.len));
    }
    files
        .iter()
        .zip(ranges)
        .map(|(f, groups)| {
            let mut plan = ParquetAccessPlan::new_none(f.row_groups.len());
            for (gi, mut rs) in groups.into_iter().enumerate() {
                let rows = f.row_groups[gi];
                let covered: u64 = rs.iter().map(|r| r.1).sum();
                if rs.is_empty() {
                    continue;
                } else if covered >= rows {
                    plan.scan(gi);
                } else {
                    rs.sort();
                    plan.set(
                        gi,
                        RowGroupAccess::Selection(ranges_to_selection(&rs, rows)),
                    );
                }
            }
            plan
        })
        .collect()
}

/// Cuts a row group of `rows` rows into ranges of about `block` rows, at page
/// boundaries when they are known.
fn blocks(rows: u64, block: u64, page_starts: Option<&Vec<u64>>) -> Vec<(u64, u64)> {
    let mut cuts: Vec<u64> = match page_starts {
        Some(starts) if starts.len() > 1 => {
            let mut cuts = vec![0];
            for &s in starts.iter().skip(1) {
                if s - cuts.last().copied().unwrap_or(0) >= block && s < rows {
                    cuts.push(s);
                }
            }
            cuts
        }
        _ => (0..rows).step_by(block.max(1) as usize).collect(),
    };
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
    fn system_picks_whole_groups_when_there_are_many() {
        let files = layout(4, 50, 1000);
        let p = plan(
            &SamplePolicy::System {
                fraction: 0.01,
                seed: 1,
            },
            &files,
        )
        .unwrap();
        assert_eq!(p.rows_selected, 2000);
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
        assert!((0.05..0.07).contains(&f), "{f}");
    }

    #[test]
    fn blocks_follow_page_boundaries() {
        let pages = vec![0, 100, 200, 300, 400, 500];
        assert_eq!(
            blocks(600, 150, Some(&pages)),
            vec![(0, 200), (200, 200), (400, 200)]
        );
        assert_eq!(
            blocks(250, 100, None),
            vec![(0, 100), (100, 100), (200, 50)]
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
