//! Stable hashing. Sample decisions must not change between Rust versions, machines or
//! releases of DataFusion, so Sluice uses its own small, fixed hash functions rather than
//! `std`'s randomized or unspecified ones.

/// SplitMix64's finalizer: a fast, well-mixed bijection on u64.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over bytes, then mixed: stable and good enough to rank or sample.
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ mix64(seed);
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix64(h)
}

/// Hash of an integer key (every integer type is widened to i64 first, so an `INT`
/// key in one source and a `BIGINT` key in another sample alike).
pub fn hash_i64(seed: u64, v: i64) -> u64 {
    mix64(mix64(seed) ^ (v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Combines hashes of parts (file, row group, block) into one.
pub fn combine(a: u64, b: u64) -> u64 {
    mix64(a ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(17))
}

/// Maps a hash to [0, 1) using its top 53 bits.
pub fn unit_interval(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A tiny seeded generator (SplitMix64) for per-row draws.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in (0, 1].
    pub fn next_open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_fixed() {
        // These values are part of Sluice's contract: a change re-samples every store.
        assert_eq!(hash_i64(7, 42), hash_i64(7, 42));
        assert_ne!(hash_i64(7, 42), hash_i64(8, 42));
        assert_eq!(mix64(0), 0xE220_A839_7B1D_CDAF);
    }

    #[test]
    fn unit_interval_is_uniformish() {
        let n = 100_000;
        let below = (0..n)
            .filter(|i| unit_interval(hash_i64(1, *i)) < 0.1)
            .count();
        let f = below as f64 / n as f64;
        assert!((f - 0.1).abs() < 0.01, "{f}");
    }
}
