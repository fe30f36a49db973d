//! Deterministic randomness for fault decisions.
//!
//! Every decision is a pure function of `(seed, salt, index)`: `hash` runs the SplitMix64
//! finalizer (Steele, Lea and Flood, OOPSLA 2014; the mixer of `java.util.SplittableRandom`)
//! over the three inputs. No generator state is shared between threads, so a decision depends
//! only on the seed and on the global I/O operation number it is made for, and a replay of the
//! same operations with the same seed makes the same decisions. The constants are fixed here
//! (not taken from a crate) so a schedule recorded today replays after a dependency upgrade.

/// The 64-bit golden ratio increment of SplitMix64.
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective avalanche mix of 64 bits.
#[must_use]
pub fn mix64(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A decision word for `index` in the stream `salt` of `seed`.
#[must_use]
pub fn hash(seed: u64, salt: u64, index: u64) -> u64 {
    let stream = mix64(seed ^ salt.wrapping_mul(GOLDEN_GAMMA));
    mix64(stream.wrapping_add(index.wrapping_mul(GOLDEN_GAMMA)))
}

/// A uniform float in [0, 1) from the top 53 bits of `word`.
#[must_use]
pub fn unit(word: u64) -> f64 {
    // 2^-53: the spacing of doubles in [0.5, 1).
    const SCALE: f64 = 1.0 / 9_007_199_254_740_992.0;
    #[allow(clippy::cast_precision_loss)]
    let value = (word >> 11) as f64 * SCALE;
    debug_assert!((0.0..1.0).contains(&value));
    value
}

/// True with probability `p` for the decision word `word`.
#[must_use]
pub fn chance(word: u64, p: f64) -> bool {
    p > 0.0 && unit(word) < p
}

/// FNV-1a over `bytes`: the seed of content-derived garbage, so a retried write of the same
/// bytes is corrupted into the same garbage (TigerBeetle's VOPR does the same).
#[must_use]
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01B3;
    bytes.iter().fold(FNV_OFFSET, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// The SplitMix64 generator: a stream of words from one starting state.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A stream starting at `seed`.
    #[must_use]
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next word of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A value in `0..bound` (`bound` > 0), by multiply-shift (bias below 2^-32 for the
    /// bounds used here, which are file sizes and sector counts).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no values");
        let value = ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64;
        debug_assert!(value < bound);
        value
    }

    /// Fills `buf` with stream bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation by Vigna).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn decisions_depend_on_every_input() {
        assert_ne!(hash(1, 2, 3), hash(1, 2, 4));
        assert_ne!(hash(1, 2, 3), hash(1, 3, 3));
        assert_ne!(hash(1, 2, 3), hash(2, 2, 3));
        assert_eq!(hash(9, 8, 7), hash(9, 8, 7));
    }
}
