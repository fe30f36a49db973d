//! Values derived from `(key index, version, seed)` that verify themselves.
//!
//! Layout (little-endian), [`VALUE_HEADER_BYTES`] = 32 bytes of header then the body:
//! `magic u32 | total length u32 | key index u64 | version u64 | checksum u64 | body ...`.
//! The body is the [`HarnessRng`] stream seeded from the triple (8 bytes per step, no
//! per-byte hashing). The checksum folds the header fields and every body word through a multiply
//! chain (each step a bijection, so any single changed word always changes it). Regenerating
//! from the same triple gives identical bytes; [`verify_value`] tells a wrong key, a truncated
//! (torn) value and corrupted bytes apart.

use super::rng::{derive_seed, mix64, HarnessRng};
use super::GenError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Header size: every value is at least this long.
pub const VALUE_HEADER_BYTES: usize = 32;
/// Smallest value size a spec may ask for (the header).
pub const VALUE_BYTES_MIN: usize = VALUE_HEADER_BYTES;
/// Largest value size: 16 MiB is beyond any engine's sensible inline value and keeps a
/// worker's value buffer bounded.
pub const VALUE_BYTES_MAX: usize = 16 << 20;
/// "HVAL" in little-endian: tells a harness value from foreign bytes.
pub const VALUE_MAGIC: u32 = u32::from_le_bytes(*b"HVAL");
const CHECKSUM_MULTIPLIER: u64 = 0x9FB2_1C65_1E98_DF25;

const fn value_bytes_default() -> usize {
    100
}
const fn value_theta_default() -> f64 {
    0.99
}

/// Value size distribution. TOML: `{ name = "fixed", bytes = 100 }`,
/// `{ name = "uniform", min = 32, max = 1000 }`, `{ name = "zipfian", min, max, theta }`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum ValueSizeSpec {
    /// Every value `bytes` long (default 100).
    Fixed {
        #[serde(default = "value_bytes_default")]
        bytes: usize,
    },
    /// Uniform in `min..=max`.
    Uniform { min: usize, max: usize },
    /// `min + rank`, rank zipfian over `0..=max-min` (`theta` default 0.99): mostly short
    /// values with a long tail, like YCSB's `fieldlengthdistribution=zipfian`.
    Zipfian {
        min: usize,
        max: usize,
        #[serde(default = "value_theta_default")]
        theta: f64,
    },
}

impl Default for ValueSizeSpec {
    fn default() -> Self {
        Self::Fixed {
            bytes: value_bytes_default(),
        }
    }
}

/// Why a value failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Shorter than its header says (or than a header): a torn or truncated write.
    Truncated {
        len_expected: usize,
        len_found: usize,
    },
    /// Longer than its header says, or a size the spec cannot produce.
    LengthMismatch {
        len_expected: usize,
        len_found: usize,
    },
    /// No harness magic: foreign or overwritten bytes.
    BadMagic { found: u32 },
    /// The checksum does not match the contents: corrupted bytes.
    Checksum { stored: u64, computed: u64 },
    /// An intact value, but of another key.
    WrongKey {
        index_expected: u64,
        index_found: u64,
    },
    /// Checksum consistent but the body differs from the regenerated one (another seed, or
    /// a corruption that also rewrote the checksum).
    BodyMismatch { offset: usize },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated {
                len_expected,
                len_found,
            } => {
                write!(f, "value truncated: {len_found} bytes of {len_expected}")
            }
            Self::LengthMismatch {
                len_expected,
                len_found,
            } => {
                write!(f, "value length {len_found}, expected {len_expected}")
            }
            Self::BadMagic { found } => {
                write!(f, "value magic {found:#010x} is not a harness value")
            }
            Self::Checksum { stored, computed } => {
                write!(
                    f,
                    "value checksum {stored:#018x} != computed {computed:#018x}"
                )
            }
            Self::WrongKey {
                index_expected,
                index_found,
            } => {
                write!(
                    f,
                    "value of key {index_found} found under key {index_expected}"
                )
            }
            Self::BodyMismatch { offset } => {
                write!(
                    f,
                    "value body differs from the regenerated one at byte {offset}"
                )
            }
        }
    }
}

impl std::error::Error for VerifyError {}

#[derive(Clone, Debug)]
enum SizeSampler {
    Fixed(usize),
    Uniform {
        min: usize,
        span: u64,
    },
    Zipf {
        min: usize,
        zipf: rand_distr::Zipf<f64>,
        items: u64,
    },
}

/// Generates and verifies values for one seed and size spec.
#[derive(Clone, Debug)]
pub struct ValueGen {
    size: SizeSampler,
    seed: u64,
}

fn check_size(name: &'static str, bytes: usize) -> Result<(), GenError> {
    if !(VALUE_BYTES_MIN..=VALUE_BYTES_MAX).contains(&bytes) {
        return Err(GenError::param(
            name,
            format!("value size {bytes} not in {VALUE_BYTES_MIN}..={VALUE_BYTES_MAX}"),
        ));
    }
    Ok(())
}

impl ValueGen {
    /// Validates `spec` (sizes within `VALUE_BYTES_MIN..=VALUE_BYTES_MAX`) and binds `seed`.
    pub fn new(spec: &ValueSizeSpec, seed: u64) -> Result<Self, GenError> {
        let size = match *spec {
            ValueSizeSpec::Fixed { bytes } => {
                check_size("bytes", bytes)?;
                SizeSampler::Fixed(bytes)
            }
            ValueSizeSpec::Uniform { min, max } | ValueSizeSpec::Zipfian { min, max, .. } => {
                check_size("min", min)?;
                check_size("max", max)?;
                if min > max {
                    return Err(GenError::param("min", format!("min {min} > max {max}")));
                }
                let span = (max - min) as u64 + 1;
                if let ValueSizeSpec::Zipfian { theta, .. } = *spec {
                    let zipf = rand_distr::Zipf::new(span as f64, theta)
                        .map_err(|e| GenError::param("theta", e.to_string()))?;
                    SizeSampler::Zipf {
                        min,
                        zipf,
                        items: span,
                    }
                } else {
                    SizeSampler::Uniform { min, span }
                }
            }
        };
        Ok(Self { size, seed })
    }

    /// Length of the value for `(index, version)` under this spec.
    #[must_use]
    pub fn value_len(&self, index: u64, version: u64) -> usize {
        let len = match &self.size {
            SizeSampler::Fixed(bytes) => *bytes,
            SizeSampler::Uniform { min, span } => {
                let mut rng = HarnessRng::from_seed(size_seed(self.seed, index, version));
                min + rng.below(*span) as usize
            }
            SizeSampler::Zipf { min, zipf, items } => {
                let mut rng = HarnessRng::from_seed(size_seed(self.seed, index, version));
                let x: f64 = rand::RngExt::sample(&mut rng, zipf);
                min + ((x as u64).saturating_sub(1).min(items - 1)) as usize
            }
        };
        debug_assert!((VALUE_BYTES_MIN..=VALUE_BYTES_MAX).contains(&len));
        len
    }

    /// Writes the value of `(index, version)` into `out` (cleared first).
    pub fn generate(&self, index: u64, version: u64, out: &mut Vec<u8>) {
        generate_value(
            index,
            version,
            self.seed,
            self.value_len(index, version),
            out,
        );
    }

    /// [`verify_value`] plus a check that the length is the one this spec gives the version.
    pub fn verify(&self, index: u64, bytes: &[u8]) -> Result<u64, VerifyError> {
        let version = verify_value(index, self.seed, bytes)?;
        let len_expected = self.value_len(index, version);
        if bytes.len() != len_expected {
            return Err(VerifyError::LengthMismatch {
                len_expected,
                len_found: bytes.len(),
            });
        }
        Ok(version)
    }
}

fn body_seed(seed: u64, index: u64, version: u64) -> u64 {
    derive_seed(derive_seed(seed, index), version)
}

fn size_seed(seed: u64, index: u64, version: u64) -> u64 {
    mix64(body_seed(seed, index, version) ^ 0x7369_7A65) // "size"
}

#[inline]
fn checksum_step(c: u64, word: u64) -> u64 {
    // xor, odd multiply and rotate are each bijections of `c`: one changed word always shows.
    (c ^ word).wrapping_mul(CHECKSUM_MULTIPLIER).rotate_left(29)
}

fn checksum_start(len: usize, index: u64, version: u64) -> u64 {
    let c = checksum_step(mix64(u64::from(VALUE_MAGIC) ^ len as u64), index);
    checksum_step(c, version)
}

/// Reads up to 8 bytes as a little-endian word, zero-padded.
#[inline(always)]
fn word_of(chunk: &[u8]) -> u64 {
    if let Ok(full) = <[u8; 8]>::try_from(chunk) {
        return u64::from_le_bytes(full);
    }
    let mut w = [0_u8; 8];
    w[..chunk.len()].copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// Writes the `len`-byte value of `(index, version, seed)` into `out` (cleared first).
/// `len` must be in `VALUE_BYTES_MIN..=VALUE_BYTES_MAX`.
pub fn generate_value(index: u64, version: u64, seed: u64, len: usize, out: &mut Vec<u8>) {
    assert!(
        (VALUE_BYTES_MIN..=VALUE_BYTES_MAX).contains(&len),
        "value length {len}"
    );
    out.clear();
    out.resize(len, 0);
    let mut rng = HarnessRng::from_seed(body_seed(seed, index, version));
    let mut c = checksum_start(len, index, version);
    let mut chunks = out[VALUE_HEADER_BYTES..].chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = rng.next_u64();
        chunk.copy_from_slice(&word.to_le_bytes());
        c = checksum_step(c, word);
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let bytes = rng.next_u64().to_le_bytes();
        tail.copy_from_slice(&bytes[..tail.len()]);
        c = checksum_step(c, word_of(tail));
    }
    let checksum = mix64(c);
    out[0..4].copy_from_slice(&VALUE_MAGIC.to_le_bytes());
    out[4..8].copy_from_slice(&(len as u32).to_le_bytes());
    out[8..16].copy_from_slice(&index.to_le_bytes());
    out[16..24].copy_from_slice(&version.to_le_bytes());
    out[24..32].copy_from_slice(&checksum.to_le_bytes());
    debug_assert_eq!(out.len(), len);
}

/// The header fields `(len, index, version, checksum)`, or why they cannot be trusted.
fn read_header(bytes: &[u8]) -> Result<(usize, u64, u64, u64), VerifyError> {
    let field = |at: usize| word_of(&bytes[at..at + 8]);
    if bytes.len() < VALUE_HEADER_BYTES {
        return Err(VerifyError::Truncated {
            len_expected: VALUE_HEADER_BYTES,
            len_found: bytes.len(),
        });
    }
    let head = field(0);
    let magic = head as u32;
    if magic != VALUE_MAGIC {
        return Err(VerifyError::BadMagic { found: magic });
    }
    let len = (head >> 32) as usize;
    Ok((len, field(8), field(16), field(24)))
}

/// Checks `bytes` is an intact value of key `key_index` for `seed`; returns its version.
/// Detects a torn/truncated value, flipped bits (checksum, then a full regeneration of the
/// body) and a value that belongs to another key.
pub fn verify_value(key_index: u64, seed: u64, bytes: &[u8]) -> Result<u64, VerifyError> {
    let (len, index, version, stored) = read_header(bytes)?;
    if bytes.len() < len {
        return Err(VerifyError::Truncated {
            len_expected: len,
            len_found: bytes.len(),
        });
    }
    if bytes.len() > len {
        return Err(VerifyError::LengthMismatch {
            len_expected: len,
            len_found: bytes.len(),
        });
    }
    // One pass computes the checksum and compares against the regenerated body; the verdicts
    // are then given in order of specificity: checksum, key, body.
    let mut rng = HarnessRng::from_seed(body_seed(seed, index, version));
    let mut c = checksum_start(len, index, version);
    let mut mismatch_at = None;
    let body = &bytes[VALUE_HEADER_BYTES..];
    let mut chunks = body.chunks_exact(8);
    for (i, chunk) in (&mut chunks).enumerate() {
        let word = word_of(chunk);
        c = checksum_step(c, word);
        if word != rng.next_u64() && mismatch_at.is_none() {
            mismatch_at = Some(VALUE_HEADER_BYTES + i * 8);
        }
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let word = word_of(tail);
        c = checksum_step(c, word);
        if word != word_of(&rng.next_u64().to_le_bytes()[..tail.len()]) && mismatch_at.is_none() {
            mismatch_at = Some(len - tail.len());
        }
    }
    let computed = mix64(c);
    if computed != stored {
        return Err(VerifyError::Checksum { stored, computed });
    }
    if index != key_index {
        return Err(VerifyError::WrongKey {
            index_expected: key_index,
            index_found: index,
        });
    }
    if let Some(offset) = mismatch_at {
        return Err(VerifyError::BodyMismatch { offset });
    }
    Ok(version)
}

/// The key index in a value's header, without verifying anything else (for messages about
/// values found under the wrong key). `None` when `bytes` has no harness header.
#[must_use]
pub fn value_key_index(bytes: &[u8]) -> Option<u64> {
    read_header(bytes).ok().map(|(_, index, _, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_value(len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        generate_value(17, 5, 1234, len, &mut out);
        out
    }

    #[test]
    fn regeneration_is_identical_and_verifies() {
        for len in [VALUE_BYTES_MIN, 33, 39, 40, 100, 150, 4096] {
            let value = sample_value(len);
            assert_eq!(value.len(), len);
            assert_eq!(value, sample_value(len));
            assert_eq!(verify_value(17, 1234, &value), Ok(5));
        }
        let mut other_version = Vec::new();
        generate_value(17, 6, 1234, 100, &mut other_version);
        assert_ne!(other_version, sample_value(100));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let value = sample_value(61);
        for bit in 0..value.len() * 8 {
            let mut bad = value.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify_value(17, 1234, &bad).is_err(),
                "bit {bit} flip not caught"
            );
        }
    }

    #[test]
    fn truncation_is_reported_as_truncated() {
        let value = sample_value(100);
        for len in 0..value.len() {
            match verify_value(17, 1234, &value[..len]) {
                Err(VerifyError::Truncated { len_found, .. }) => assert_eq!(len_found, len),
                other => panic!("truncated to {len}: {other:?}"),
            }
        }
        let mut longer = value.clone();
        longer.push(0);
        assert!(matches!(
            verify_value(17, 1234, &longer),
            Err(VerifyError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn wrong_key_wrong_seed_and_foreign_bytes_are_caught() {
        let value = sample_value(100);
        assert_eq!(
            verify_value(18, 1234, &value),
            Err(VerifyError::WrongKey {
                index_expected: 18,
                index_found: 17
            })
        );
        assert!(matches!(
            verify_value(17, 999, &value),
            Err(VerifyError::BodyMismatch { .. })
        ));
        assert!(matches!(
            verify_value(17, 1234, &[0xAB; 100]),
            Err(VerifyError::BadMagic { .. })
        ));
        // Two compensating top-bit flips in adjacent words: checksum or body comparison sees it.
        let mut bad = value.clone();
        bad[39] ^= 0x80;
        bad[47] ^= 0x80;
        assert!(verify_value(17, 1234, &bad).is_err());
    }

    #[test]
    fn value_gen_sizes_follow_the_spec() -> Result<(), GenError> {
        let specs = [
            ValueSizeSpec::Fixed { bytes: 150 },
            ValueSizeSpec::Uniform { min: 32, max: 64 },
            ValueSizeSpec::Zipfian {
                min: 40,
                max: 4000,
                theta: 0.99,
            },
        ];
        for spec in specs {
            let generator = ValueGen::new(&spec, 7)?;
            let mut out = Vec::new();
            let mut lens = std::collections::HashSet::new();
            for index in 0..500 {
                generator.generate(index, 1, &mut out);
                lens.insert(out.len());
                assert_eq!(generator.verify(index, &out), Ok(1));
                assert_eq!(generator.value_len(index, 1), out.len());
            }
            let expected_distinct = !matches!(spec, ValueSizeSpec::Fixed { .. });
            assert_eq!(lens.len() > 1, expected_distinct, "{spec:?}");
        }
        // A value of a valid length for another spec fails the spec's length check.
        let fixed = ValueGen::new(&ValueSizeSpec::Fixed { bytes: 150 }, 7)?;
        let mut out = Vec::new();
        generate_value(3, 1, 7, 149, &mut out);
        assert!(matches!(
            fixed.verify(3, &out),
            Err(VerifyError::LengthMismatch { .. })
        ));
        Ok(())
    }

    #[test]
    fn invalid_size_specs_are_rejected() {
        assert!(ValueGen::new(&ValueSizeSpec::Fixed { bytes: 31 }, 0).is_err());
        assert!(ValueGen::new(&ValueSizeSpec::Uniform { min: 64, max: 32 }, 0).is_err());
        assert!(ValueGen::new(
            &ValueSizeSpec::Fixed {
                bytes: VALUE_BYTES_MAX + 1
            },
            0
        )
        .is_err());
        assert!(toml::from_str::<ValueSizeSpec>("name = \"fixed\"\nsize = 3").is_err());
    }
}
