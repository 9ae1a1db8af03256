//! The CPU features this build was compiled for (`.cargo/config.toml` targets
//! x86-64-v3). Without them the binary would die on an illegal instruction somewhere in
//! a query; it says so before it starts instead.
//!
//! `is_x86_feature_detected!` cannot tell: it answers `true` at compile time for a
//! feature the build enables. So this asks the CPU itself (`cpuid`).

/// `Err` names the features this build needs and the CPU lacks, and how to rebuild.
pub fn check() -> Result<(), String> {
    let missing = missing();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "this sluice was built for x86-64-v3 CPUs and this CPU lacks {}; rebuild it for this \
         CPU with: RUSTFLAGS=\"-C target-cpu=native\" cargo build --release -p sluice-cli",
        missing.join(", ")
    ))
}

/// The features enabled at compile time that `cpuid` says this CPU does not have.
#[cfg(target_arch = "x86_64")]
fn missing() -> Vec<&'static str> {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    let leaf1 = __cpuid(1);
    let leaf7 = if __cpuid(0).eax >= 7 {
        __cpuid_count(7, 0)
    } else {
        std::arch::x86_64::CpuidResult {
            eax: 0,
            ebx: 0,
            ecx: 0,
            edx: 0,
        }
    };
    let has = |register: u32, bit: u32| register & (1 << bit) != 0;
    let features = [
        ("avx", cfg!(target_feature = "avx"), has(leaf1.ecx, 28)),
        ("avx2", cfg!(target_feature = "avx2"), has(leaf7.ebx, 5)),
        ("bmi2", cfg!(target_feature = "bmi2"), has(leaf7.ebx, 8)),
        ("fma", cfg!(target_feature = "fma"), has(leaf1.ecx, 12)),
    ];
    features
        .into_iter()
        .filter(|(_, needed, present)| *needed && !present)
        .map(|(name, ..)| name)
        .collect()
}

#[cfg(not(target_arch = "x86_64"))]
fn missing() -> Vec<&'static str> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    /// The machine that builds the binary also runs it in the tests: it has every
    /// feature the build was compiled for.
    #[test]
    fn the_building_machine_passes() {
        assert_eq!(super::missing(), Vec::<&str>::new());
        assert!(super::check().is_ok());
    }
}
