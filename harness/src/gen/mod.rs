//! Generators: the seeded RNG, key distributions, key encodings and self-verifying values.
//!
//! Everything random derives from one `u64` seed through [`HarnessRng`]; per-thread streams
//! come from `(seed, thread)`. Key indexes are `u64` end to end.

pub mod cli;
pub mod dist;
pub mod key;
pub mod keyspace;
pub mod rng;
pub mod stats;
pub mod value;
pub mod zeta;

pub use dist::{fnv1a64, DistributionSpec, KeySampler, YcsbZipf, ZipfMethod};
pub use key::{KeyEncoder, KeyEncodingSpec};
pub use keyspace::KeySpace;
pub use rng::{derive_seed, mix64, HarnessRng};
pub use value::{
    generate_value, value_key_index, verify_value, ValueGen, ValueSizeSpec, VerifyError,
};
pub use zeta::zeta;

use std::fmt;

/// A generator spec that cannot be built: which parameter, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenError {
    /// The offending parameter as named in TOML.
    pub parameter: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl GenError {
    /// An error about `parameter`.
    pub fn param(parameter: &'static str, reason: impl Into<String>) -> Self {
        Self {
            parameter,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid generator parameter `{}`: {}",
            self.parameter, self.reason
        )
    }
}

impl std::error::Error for GenError {}
