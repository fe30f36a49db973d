//! Our engine against its peers.

use super::{EngineReport, Ratio};

/// Ratios of `ours` against each of `peers`, per phase present in both.
pub fn compute_ratios(ours: &EngineReport, peers: &[EngineReport]) -> Vec<Ratio> {
    let _ = (ours, peers);
    Vec::new()
}
