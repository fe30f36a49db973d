//! Key encodings: deterministic functions of `(index, seed)`, so the same index always maps to
//! the same key bytes and distinct indexes map to distinct keys (except where noted).

use super::dist::fnv1a64;
use super::rng::{derive_seed, mix64};
use super::GenError;
use serde::{Deserialize, Serialize};

/// Longest key [`KeyEncodingSpec::Random`] produces: far above any engine's inline-key sweet
/// spot, and it bounds the per-key buffer.
pub const KEY_BYTES_MAX: usize = 4096;
/// Shortest random key: 8 bytes carry a bijective image of the index, so keys never collide.
pub const KEY_BYTES_RANDOM_MIN: usize = 8;
/// Widest zero padding for `ycsb` keys: u64::MAX has 20 decimal digits.
pub const YCSB_DIGITS_MAX: usize = 20;
/// UUIDv7 keys use a fixed base time (2023-11-14T22:13:20Z) so they are reproducible.
pub const UUID_V7_EPOCH_MS: u64 = 1_700_000_000_000;
/// UUIDv7 keys carry the low 12 bits of the index in `rand_a` (RFC 9562 method 1 counter), so
/// 4096 consecutive indexes share one millisecond and keys sort by index.
pub const UUID_V7_KEYS_PER_MS: u64 = 4096;

const fn ycsb_pad_default() -> usize {
    YCSB_DIGITS_MAX
}
const fn random_len_default() -> usize {
    24
}

/// How `index` becomes key bytes. TOML: `{ name = "be_u64" }` and so on.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyEncodingSpec {
    /// 8 bytes, big-endian index: byte order equals numeric order. The default.
    BeU64 {},
    /// YCSB style `user<digits>`. `hashed = false` (default): the index itself, zero-padded to
    /// `pad_digits` (default 20) so byte order equals numeric order. `hashed = true`: YCSB's
    /// `insertorder=hashed`, the digits of `fnv1a64(index)`; not injective: at 1e9 keys about
    /// a 5% chance that two indexes share a key.
    Ycsb {
        #[serde(default)]
        hashed: bool,
        #[serde(default = "ycsb_pad_default")]
        pad_digits: usize,
    },
    /// 16 random-looking bytes shaped as a UUIDv4 (version 4, RFC variant); 64 of the bits are
    /// a bijection of the index, so keys never collide. Depends on the seed.
    UuidV4 {},
    /// 16 bytes shaped as a UUIDv7: 48-bit millisecond time `UUID_V7_EPOCH_MS + index / 4096`,
    /// the index's low 12 bits as counter, 62 seed-derived bits. Sorts by index for indexes
    /// below about 1.15e18 (where the 48-bit time field wraps); distinct for every index.
    UuidV7 {},
    /// `len` (default 24, as redb's benchmark) random-looking bytes; the first 8 are a
    /// bijection of the index so keys never collide. `len` in 8..=4096.
    Random {
        #[serde(default = "random_len_default")]
        len: usize,
    },
}

impl Default for KeyEncodingSpec {
    fn default() -> Self {
        Self::BeU64 {}
    }
}

/// A built key encoding bound to a seed.
#[derive(Clone, Debug)]
pub struct KeyEncoder {
    spec: KeyEncodingSpec,
    seed_key: u64,
}

impl KeyEncoder {
    /// Validates `spec` and binds it to `seed`.
    pub fn new(spec: &KeyEncodingSpec, seed: u64) -> Result<Self, GenError> {
        match *spec {
            KeyEncodingSpec::Ycsb { pad_digits, .. } if pad_digits > YCSB_DIGITS_MAX => {
                return Err(GenError::param(
                    "pad_digits",
                    format!("must be <= {YCSB_DIGITS_MAX}"),
                ));
            }
            KeyEncodingSpec::Random { len }
                if !(KEY_BYTES_RANDOM_MIN..=KEY_BYTES_MAX).contains(&len) =>
            {
                return Err(GenError::param(
                    "len",
                    format!("must be in {KEY_BYTES_RANDOM_MIN}..={KEY_BYTES_MAX}, got {len}"),
                ));
            }
            _ => {}
        }
        Ok(Self {
            spec: spec.clone(),
            seed_key: derive_seed(seed, 0x6B65_7973), // "keys"
        })
    }

    /// Longest key this encoder produces, in bytes.
    #[must_use]
    pub fn key_bytes_max(&self) -> usize {
        match self.spec {
            KeyEncodingSpec::BeU64 {} => 8,
            KeyEncodingSpec::Ycsb { .. } => 4 + YCSB_DIGITS_MAX,
            KeyEncodingSpec::UuidV4 {} | KeyEncodingSpec::UuidV7 {} => 16,
            KeyEncodingSpec::Random { len } => len,
        }
    }

    /// Writes the key of `index` into `out` (cleared first).
    #[inline]
    pub fn encode(&self, index: u64, out: &mut Vec<u8>) {
        out.clear();
        match self.spec {
            KeyEncodingSpec::BeU64 {} => out.extend_from_slice(&index.to_be_bytes()),
            KeyEncodingSpec::Ycsb { hashed, pad_digits } => {
                let number = if hashed { fnv1a64(index) } else { index };
                out.extend_from_slice(b"user");
                push_decimal(number, pad_digits, out);
            }
            KeyEncodingSpec::UuidV4 {} => out.extend_from_slice(&self.uuid_v4(index)),
            KeyEncodingSpec::UuidV7 {} => out.extend_from_slice(&self.uuid_v7(index)),
            KeyEncodingSpec::Random { len } => self.random(index, len, out),
        }
        debug_assert!(out.len() <= self.key_bytes_max());
    }

    /// The key of `index` as a new vector.
    #[must_use]
    pub fn key(&self, index: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.key_bytes_max());
        self.encode(index, &mut out);
        out
    }

    /// A bijection of `index` for this seed (xor with a seed word, then the mix64 bijection).
    #[inline]
    fn unique_word(&self, index: u64) -> u64 {
        mix64(index ^ self.seed_key)
    }

    fn uuid_v4(&self, index: u64) -> [u8; 16] {
        let unique = self.unique_word(index).to_be_bytes();
        let filler = mix64(self.unique_word(index) ^ 0x5555_5555_5555_5555).to_be_bytes();
        let mut b = [0_u8; 16];
        // Unique bits avoid the version nibble (byte 6) and variant bits (byte 8).
        b[0..6].copy_from_slice(&unique[0..6]);
        b[7] = unique[6];
        b[9] = unique[7];
        b[6] = 0x40 | (filler[0] & 0x0F);
        b[8] = 0x80 | (filler[1] & 0x3F);
        b[10..16].copy_from_slice(&filler[2..8]);
        b
    }

    fn uuid_v7(&self, index: u64) -> [u8; 16] {
        let ms = UUID_V7_EPOCH_MS + index / UUID_V7_KEYS_PER_MS;
        let counter = index % UUID_V7_KEYS_PER_MS;
        let rand_b = self.unique_word(index).to_be_bytes();
        let mut b = [0_u8; 16];
        b[0..6].copy_from_slice(&ms.to_be_bytes()[2..8]);
        b[6] = 0x70 | ((counter >> 8) as u8 & 0x0F);
        b[7] = counter as u8;
        b[8] = 0x80 | (rand_b[0] & 0x3F);
        b[9..16].copy_from_slice(&rand_b[1..8]);
        b
    }

    fn random(&self, index: u64, len: usize, out: &mut Vec<u8>) {
        debug_assert!(len >= KEY_BYTES_RANDOM_MIN);
        let first = self.unique_word(index);
        out.extend_from_slice(&first.to_le_bytes());
        let mut state = first;
        while out.len() < len {
            state = mix64(state.wrapping_add(0x9E37_79B9_7F4A_7C15));
            let word = state.to_le_bytes();
            let take = (len - out.len()).min(8);
            out.extend_from_slice(&word[..take]);
        }
    }
}

/// Appends the decimal digits of `x`, left-padded with zeros to at least `pad` digits.
fn push_decimal(x: u64, pad: usize, out: &mut Vec<u8>) {
    let mut digits = [0_u8; YCSB_DIGITS_MAX];
    let mut at = YCSB_DIGITS_MAX;
    let mut rest = x;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let used = YCSB_DIGITS_MAX - at;
    out.extend(std::iter::repeat_n(b'0', pad.saturating_sub(used)));
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn encoders() -> Result<Vec<KeyEncoder>, GenError> {
        [
            KeyEncodingSpec::BeU64 {},
            KeyEncodingSpec::Ycsb {
                hashed: false,
                pad_digits: 20,
            },
            KeyEncodingSpec::Ycsb {
                hashed: true,
                pad_digits: 0,
            },
            KeyEncodingSpec::UuidV4 {},
            KeyEncodingSpec::UuidV7 {},
            KeyEncodingSpec::Random { len: 24 },
            KeyEncodingSpec::Random { len: 8 },
        ]
        .iter()
        .map(|spec| KeyEncoder::new(spec, 99))
        .collect()
    }

    #[test]
    fn keys_are_deterministic_and_distinct() -> Result<(), GenError> {
        for encoder in encoders()? {
            let again = encoder.clone();
            let mut seen = HashSet::new();
            for index in (0..20_000).chain([u64::MAX / 4, 1 << 40]) {
                let key = encoder.key(index);
                assert_eq!(key, again.key(index));
                assert!(key.len() <= encoder.key_bytes_max());
                assert!(seen.insert(key), "{encoder:?}: duplicate at {index}");
            }
        }
        Ok(())
    }

    #[test]
    fn formats_are_as_documented() -> Result<(), GenError> {
        let be = KeyEncoder::new(&KeyEncodingSpec::BeU64 {}, 1)?;
        assert_eq!(be.key(0x0102), vec![0, 0, 0, 0, 0, 0, 1, 2]);
        let ycsb = KeyEncoder::new(
            &KeyEncodingSpec::Ycsb {
                hashed: false,
                pad_digits: 6,
            },
            1,
        )?;
        assert_eq!(ycsb.key(42), b"user000042".to_vec());
        assert_eq!(ycsb.key(1_234_567), b"user1234567".to_vec());
        let hashed = KeyEncoder::new(
            &KeyEncodingSpec::Ycsb {
                hashed: true,
                pad_digits: 0,
            },
            1,
        )?;
        assert_eq!(hashed.key(7), format!("user{}", fnv1a64(7)).into_bytes());
        let v4 = KeyEncoder::new(&KeyEncodingSpec::UuidV4 {}, 1)?.key(5);
        assert_eq!((v4[6] >> 4, v4[8] >> 6), (4, 0b10));
        let v7 = KeyEncoder::new(&KeyEncodingSpec::UuidV7 {}, 1)?;
        let (a, b) = (v7.key(4095), v7.key(4096));
        assert_eq!((a[6] >> 4, a[8] >> 6), (7, 0b10));
        assert!(a < b, "uuid v7 keys must sort by index");
        let ms = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]);
        assert_eq!(ms, UUID_V7_EPOCH_MS + 1);
        // The seed changes random keys but not ordered ones.
        let other = KeyEncoder::new(&KeyEncodingSpec::Random { len: 24 }, 2)?;
        let this = KeyEncoder::new(&KeyEncodingSpec::Random { len: 24 }, 1)?;
        assert_ne!(other.key(3), this.key(3));
        assert_eq!(this.key(3).len(), 24);
        Ok(())
    }

    #[test]
    fn invalid_specs_are_rejected() {
        assert!(KeyEncoder::new(&KeyEncodingSpec::Random { len: 7 }, 0).is_err());
        assert!(KeyEncoder::new(
            &KeyEncodingSpec::Random {
                len: KEY_BYTES_MAX + 1
            },
            0
        )
        .is_err());
        assert!(KeyEncoder::new(
            &KeyEncodingSpec::Ycsb {
                hashed: false,
                pad_digits: 21
            },
            0
        )
        .is_err());
        assert!(toml::from_str::<KeyEncodingSpec>("name = \"random\"\nlength = 3").is_err());
    }
}
