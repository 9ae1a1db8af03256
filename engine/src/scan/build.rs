//! Sampling over a sample build: a source whose files `sample build` wrote already holds
//! a fraction of the environment it was built from, and a policy's fraction is of that.

use crate::project::sampling::{SamplePolicy, SourceSampling};
use crate::store::dataset::BuiltSample;
use crate::util::text::percent;

/// How a source whose files a sample build wrote (`built`) is read under `sampling`. A
/// policy's fraction is of the data the build was taken from, and the build already holds
/// `built.fraction` of it, so what is left is the ratio: a 1% `system` policy over a 1%
/// build reads the whole build, not 1% of it. A `key` policy on the build's key and seed
/// is left as it is: its hash test keeps exactly the build's keys under its fraction.
/// `key_column` is the column a `key` policy reads in this source. Returns the sampling
/// left to do and, if it changed, why (for the run's report).
pub fn over_build(
    sampling: SourceSampling,
    built: &BuiltSample,
    key_column: Option<&str>,
) -> (SourceSampling, Option<String>) {
    let SourceSampling::Sampled(policy) = &sampling else {
        return (sampling, None);
    };
    let same_keys = matches!(policy, SamplePolicy::Key { seed, .. }
        if *seed == built.seed && key_column == Some(built.key.as_str()));
    // A number of rows is what it is; the build's own key sample keeps its keys.
    let Some(fraction) = policy.fraction().filter(|_| !same_keys) else {
        return (sampling, None);
    };
    let left = fraction / built.fraction;
    let note = format!(
        "over a {} sample build of {}",
        percent(built.fraction),
        built.from
    );
    if left >= 1.0 {
        (SourceSampling::Full, Some(note))
    } else {
        (
            SourceSampling::Sampled(policy.with_fraction(left)),
            Some(note),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_holds_part_of_what_a_policy_asks_for() {
        let built = BuiltSample {
            from: "production".into(),
            key: "account_id".into(),
            fraction: 0.2,
            seed: 3,
            heavy_keys: Vec::new(),
            origin_rows: None,
        };
        let sampled = |p: SamplePolicy| SourceSampling::Sampled(p);
        // Half of the build.
        let (s, note) = over_build(
            sampled(SamplePolicy::System {
                fraction: 0.1,
                seed: 7,
            }),
            &built,
            None,
        );
        assert_eq!(
            s,
            sampled(SamplePolicy::System {
                fraction: 0.5,
                seed: 7
            })
        );
        assert_eq!(
            note.as_deref(),
            Some("over a 20% sample build of production")
        );
        // All of it, and more than it has.
        for fraction in [0.2, 0.5] {
            let (s, note) = over_build(
                sampled(SamplePolicy::Bernoulli { fraction, seed: 7 }),
                &built,
                None,
            );
            assert_eq!(s, SourceSampling::Full);
            assert!(note.is_some());
        }
        // The build's key and seed: the hash test already keeps the build's keys.
        let key = SamplePolicy::Key {
            fraction: 0.1,
            seed: 3,
            key: None,
        };
        assert_eq!(
            over_build(sampled(key.clone()), &built, Some("account_id")),
            (sampled(key.clone()), None)
        );
        // Another seed draws other keys: half of the build's, independently.
        let other = SamplePolicy::Key {
            fraction: 0.1,
            seed: 8,
            key: None,
        };
        let (s, _) = over_build(sampled(other), &built, Some("account_id"));
        assert_eq!(
            s,
            sampled(SamplePolicy::Key {
                fraction: 0.5,
                seed: 8,
                key: None
            })
        );
        // A number of rows, and a full read, are what they are.
        let rows = sampled(SamplePolicy::Rows { rows: 10, seed: 1 });
        assert_eq!(over_build(rows.clone(), &built, None), (rows, None));
        assert_eq!(
            over_build(SourceSampling::Full, &built, None),
            (SourceSampling::Full, None)
        );
    }
}
