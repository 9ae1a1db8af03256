//! Sample policies: how an environment (or one source) reads less than the full set.
//!
//! The policy only says *what* to keep; `crate::scan` turns it into Parquet access
//! plans (system, bernoulli, rows) or a key-hash filter (key).

use std::fmt;

use crate::util::text::percent;

/// How a sample is drawn. Every method is seeded: same seed, same data, same rows.
#[derive(Debug, Clone, PartialEq)]
pub enum SamplePolicy {
    /// Whole row groups (or row ranges inside them, where a file has few groups): the
    /// bytes read fall with the fraction.
    System { fraction: f64, seed: u64 },
    /// Rows whose stable hash of the key column falls under the fraction; the same key
    /// value is kept or dropped in every source, so joins on the key stay whole.
    Key {
        fraction: f64,
        seed: u64,
        /// The key column; a source's own `sample_key` takes precedence.
        key: Option<String>,
    },
    /// Each row independently, with a seeded pseudo-random draw.
    Bernoulli { fraction: f64, seed: u64 },
    /// At most this many rows per source, taken from row groups in a seeded order.
    Rows { rows: u64, seed: u64 },
}

/// The method names accepted in `sample = { method = … }` and `--sample-method`.
pub const METHODS: &[&str] = &["system", "key", "bernoulli", "rows"];

impl SamplePolicy {
    pub fn method(&self) -> &'static str {
        match self {
            SamplePolicy::System { .. } => "system",
            SamplePolicy::Key { .. } => "key",
            SamplePolicy::Bernoulli { .. } => "bernoulli",
            SamplePolicy::Rows { .. } => "rows",
        }
    }

    pub fn fraction(&self) -> Option<f64> {
        match self {
            SamplePolicy::System { fraction, .. }
            | SamplePolicy::Key { fraction, .. }
            | SamplePolicy::Bernoulli { fraction, .. } => Some(*fraction),
            SamplePolicy::Rows { .. } => None,
        }
    }

    pub fn seed(&self) -> u64 {
        match self {
            SamplePolicy::System { seed, .. }
            | SamplePolicy::Key { seed, .. }
            | SamplePolicy::Bernoulli { seed, .. }
            | SamplePolicy::Rows { seed, .. } => *seed,
        }
    }

    /// Builds a policy from its parts, checking each one. Used by the project loader
    /// and by the command-line overrides alike, so both give the same messages.
    pub fn build(
        method: &str,
        fraction: Option<f64>,
        rows: Option<u64>,
        seed: Option<u64>,
        key: Option<String>,
    ) -> Result<SamplePolicy, String> {
        let seed = seed.unwrap_or(0);
        let need_fraction = |fraction: Option<f64>| -> Result<f64, String> {
            let f =
                fraction.ok_or_else(|| format!("sample method `{method}` needs a `fraction`"))?;
            check_fraction(f)?;
            Ok(f)
        };
        if method != "rows" && rows.is_some() {
            return Err(format!(
                "`rows` applies to sample method `rows`, not `{method}`"
            ));
        }
        if method != "key" && key.is_some() {
            return Err(format!(
                "`key` applies to sample method `key`, not `{method}`"
            ));
        }
        match method {
            "system" => Ok(SamplePolicy::System {
                fraction: need_fraction(fraction)?,
                seed,
            }),
            "key" => Ok(SamplePolicy::Key {
                fraction: need_fraction(fraction)?,
                seed,
                key,
            }),
            "bernoulli" => Ok(SamplePolicy::Bernoulli {
                fraction: need_fraction(fraction)?,
                seed,
            }),
            "rows" => {
                if fraction.is_some() {
                    return Err("sample method `rows` takes `rows = N`, not a fraction".into());
                }
                let rows = rows.ok_or("sample method `rows` needs `rows = N`")?;
                Ok(SamplePolicy::Rows { rows, seed })
            }
            other => Err(format!(
                "unknown sample method `{other}` (expected one of: {})",
                METHODS.join(", ")
            )),
        }
    }

    /// The same policy with another fraction (for `--sample F`); `rows` takes F as a count.
    pub fn with_fraction(&self, fraction: f64) -> SamplePolicy {
        match self.clone() {
            SamplePolicy::System { seed, .. } => SamplePolicy::System { fraction, seed },
            SamplePolicy::Key { seed, key, .. } => SamplePolicy::Key {
                fraction,
                seed,
                key,
            },
            SamplePolicy::Bernoulli { seed, .. } => SamplePolicy::Bernoulli { fraction, seed },
            rows @ SamplePolicy::Rows { .. } => rows,
        }
    }

    pub fn with_seed(&self, seed: u64) -> SamplePolicy {
        let mut p = self.clone();
        match &mut p {
            SamplePolicy::System { seed: s, .. }
            | SamplePolicy::Key { seed: s, .. }
            | SamplePolicy::Bernoulli { seed: s, .. }
            | SamplePolicy::Rows { seed: s, .. } => *s = seed,
        }
        p
    }
}

pub fn check_fraction(f: f64) -> Result<(), String> {
    if f.is_finite() && f > 0.0 && f <= 1.0 {
        Ok(())
    } else {
        Err(format!("sample fraction {f} is outside (0, 1]"))
    }
}

impl fmt::Display for SamplePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplePolicy::System { fraction, seed } => {
                write!(f, "system {} seed {seed}", percent(*fraction))
            }
            SamplePolicy::Key {
                fraction,
                seed,
                key,
            } => {
                write!(f, "key {} seed {seed}", percent(*fraction))?;
                if let Some(k) = key {
                    write!(f, " on {k}")?;
                }
                Ok(())
            }
            SamplePolicy::Bernoulli { fraction, seed } => {
                write!(f, "bernoulli {} seed {seed}", percent(*fraction))
            }
            SamplePolicy::Rows { rows, seed } => write!(f, "rows {rows} seed {seed}"),
        }
    }
}

/// What a source reads in an environment, after the source's own override.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSampling {
    Full,
    Sampled(SamplePolicy),
}

/// A run's one-time override of the environment's policy (`--sample`, `--sample-method`,
/// `--seed`, `--full`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleOverride {
    pub full: bool,
    pub fraction: Option<f64>,
    pub method: Option<String>,
    pub seed: Option<u64>,
    pub key: Option<String>,
}

impl SampleOverride {
    pub fn is_empty(&self) -> bool {
        *self == SampleOverride::default()
    }

    /// Applies the override to an environment's policy. Returns `None` for a full read.
    pub fn apply(&self, env_policy: Option<&SamplePolicy>) -> Result<Option<SamplePolicy>, String> {
        if self.full {
            if self.fraction.is_some() || self.method.is_some() || self.key.is_some() {
                return Err("`--full` cannot be combined with `--sample`, `--sample-method` or `--sample-key`".into());
            }
            return Ok(None);
        }
        if self.fraction.is_none() && self.method.is_none() && self.key.is_none() {
            if self.seed.is_some() && env_policy.is_none() {
                return Err("`--seed` needs a sample to seed: this environment reads the full set, add `--sample F`".into());
            }
            // Only a seed (or nothing): re-seed the environment's own policy.
            return Ok(env_policy.map(|p| match self.seed {
                Some(s) => p.with_seed(s),
                None => p.clone(),
            }));
        }
        let method = self
            .method
            .clone()
            .or_else(|| env_policy.map(|p| p.method().to_string()))
            .unwrap_or_else(|| "system".to_string());
        let seed = self.seed.or(env_policy.map(|p| p.seed()));
        let env_same_method = env_policy.filter(|p| p.method() == method);
        let key = self.key.clone().or_else(|| match env_same_method {
            Some(SamplePolicy::Key { key, .. }) => key.clone(),
            _ => None,
        });
        if method == "rows" {
            let rows = match (self.fraction, env_same_method) {
                (Some(n), _) if n >= 1.0 && n.fract() == 0.0 => Some(n as u64),
                (Some(n), _) => {
                    return Err(format!(
                        "`--sample {n}` with method `rows` must be a whole number of rows"
                    ));
                }
                (None, Some(SamplePolicy::Rows { rows, .. })) => Some(*rows),
                (None, _) => None,
            };
            return SamplePolicy::build("rows", None, rows, seed, None).map(Some);
        }
        let fraction = self
            .fraction
            .or_else(|| env_same_method.and_then(|p| p.fraction()))
            .or_else(|| env_policy.and_then(|p| p.fraction()));
        SamplePolicy::build(&method, fraction, None, seed, key).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_keeps_env_method_and_changes_fraction() {
        let env = SamplePolicy::Key {
            fraction: 0.05,
            seed: 7,
            key: Some("account_id".into()),
        };
        let o = SampleOverride {
            fraction: Some(0.5),
            ..Default::default()
        };
        assert_eq!(
            o.apply(Some(&env)).unwrap(),
            Some(SamplePolicy::Key {
                fraction: 0.5,
                seed: 7,
                key: Some("account_id".into())
            })
        );
    }

    #[test]
    fn override_on_full_env_defaults_to_system() {
        let o = SampleOverride {
            fraction: Some(0.1),
            ..Default::default()
        };
        assert_eq!(
            o.apply(None).unwrap(),
            Some(SamplePolicy::System {
                fraction: 0.1,
                seed: 0
            })
        );
    }

    #[test]
    fn bad_fractions_are_refused() {
        for f in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(SamplePolicy::build("system", Some(f), None, None, None).is_err());
        }
        assert!(SamplePolicy::build("system", Some(1.0), None, None, None).is_ok());
    }

    #[test]
    fn full_excludes_fraction() {
        let o = SampleOverride {
            full: true,
            fraction: Some(0.1),
            ..Default::default()
        };
        assert!(o.apply(None).is_err());
    }
}
