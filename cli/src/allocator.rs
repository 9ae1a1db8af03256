//! The system allocator's thresholds (glibc on Linux), set once before any thread starts.
//!
//! Why: a scan decompresses each Parquet page into a buffer of its own, as large as the
//! page (about 1 MiB in files that tpchgen-cli and pyarrow write), and frees it a few
//! batches later. With glibc's defaults such a buffer is an `mmap` of its own at first,
//! and memory freed at the top of a heap goes back to the kernel, so the next buffer
//! faults its pages in again, each one zeroed by the kernel: on TPC-H q19 over
//! tpchgen-cli's files 30% of the CPU time was in the kernel (page faults, zeroing,
//! unmapping), 8% with these thresholds (BENCHMARKS.md, "Levers"). Buffers up to
//! [`MMAP_THRESHOLD`] come from the heap, and a heap keeps up to [`TRIM_THRESHOLD`] free
//! at its top for the next ones.
//!
//! Either glibc setting given by the user (`GLIBC_TUNABLES=glibc.malloc.…`, or the
//! older `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_`) leaves both as the user
//! set them. Builds with `--features mimalloc` and other C libraries are not touched.

/// Allocations above this size get an `mmap` of their own: glibc's own ceiling for the
/// threshold it adjusts itself (32 MiB on 64-bit targets).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory a heap keeps at its top instead of returning it to the kernel: what a
/// long-lived process (`sluice serve`) may hold beyond its live data, per heap.
pub const TRIM_THRESHOLD: usize = 64 << 20;

/// Whether the environment sets glibc's malloc thresholds itself.
fn user_set(var: impl Fn(&str) -> Option<String>) -> bool {
    var("MALLOC_MMAP_THRESHOLD_").is_some()
        || var("MALLOC_TRIM_THRESHOLD_").is_some()
        || var("GLIBC_TUNABLES").is_some_and(|t| {
            t.contains("glibc.malloc.mmap_threshold") || t.contains("glibc.malloc.trim_threshold")
        })
}

/// Sets the thresholds (see the module's documentation), unless the user set them.
pub fn tune() {
    if user_set(|name| std::env::var(name).ok()) {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    // SAFETY: `mallopt` only sets parameters of glibc's allocator, and is called from
    // `main` before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_own_glibc_settings_are_left_alone() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(!user_set(env(&[])));
        assert!(!user_set(env(&[(
            "GLIBC_TUNABLES",
            "glibc.pthread.rseq=0"
        )])));
        assert!(user_set(env(&[(
            "GLIBC_TUNABLES",
            "glibc.pthread.rseq=0:glibc.malloc.trim_threshold=0"
        )])));
        assert!(user_set(env(&[(
            "GLIBC_TUNABLES",
            "glibc.malloc.mmap_threshold=131072"
        )])));
        assert!(user_set(env(&[("MALLOC_MMAP_THRESHOLD_", "131072")])));
        assert!(user_set(env(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
    }
}
