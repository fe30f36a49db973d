//! Our engine against its peers.

use std::collections::BTreeMap;

use super::{Better, Comparison, EngineReport, LatencyComparison, PhaseReport, Ratio};

impl Comparison {
    /// Compares `ours` with `peer` for a metric where `better` is the good direction.
    /// The ratio is `ours / peer`, absent when `peer` is zero (or either is not finite), so
    /// report.json never holds an infinity.
    pub fn new(ours: f64, peer: f64, better: Better) -> Comparison {
        let ratio = if peer != 0.0 && ours.is_finite() && peer.is_finite() {
            // Six decimals: plenty for a ratio, and short enough to parse back exactly.
            Some(((ours / peer) * 1e6).round() / 1e6)
        } else {
            None
        };
        let ours_better = match better {
            Better::Higher => ours > peer,
            Better::Lower => ours < peer,
        };
        debug_assert!(ratio.is_none_or(f64::is_finite));
        Comparison {
            ours,
            peer,
            ratio,
            better,
            ours_better,
        }
    }
}

/// Ratios of `ours` against each of `peers` (skipping `ours` itself if listed), one [`Ratio`]
/// per peer and phase present in both, in `ours`' phase order then peer order.
pub fn compute_ratios(ours: &EngineReport, peers: &[EngineReport]) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    for phase in &ours.phases {
        for peer in peers.iter().filter(|peer| peer.engine != ours.engine) {
            if let Some(peer_phase) = peer.phases.iter().find(|p| p.name == phase.name) {
                ratios.push(phase_ratio(&ours.engine, phase, &peer.engine, peer_phase));
            }
        }
    }
    ratios
}

fn phase_ratio(ours: &str, phase: &PhaseReport, peer: &str, peer_phase: &PhaseReport) -> Ratio {
    assert_eq!(phase.name, peer_phase.name, "ratios compare the same phase");
    let mut latency = BTreeMap::new();
    for (op, summary) in &phase.latency {
        if let Some(peer_summary) = peer_phase.latency.get(op) {
            let comparison = LatencyComparison {
                p50_us: Comparison::new(summary.p50_us, peer_summary.p50_us, Better::Lower),
                p99_us: Comparison::new(summary.p99_us, peer_summary.p99_us, Better::Lower),
            };
            latency.insert(op.clone(), comparison);
        }
    }
    Ratio {
        phase: phase.name.clone(),
        ours: ours.to_string(),
        peer: peer.to_string(),
        throughput_ops_s: Comparison::new(
            phase.throughput_ops_s,
            peer_phase.throughput_ops_s,
            Better::Higher,
        ),
        latency,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_directions() {
        let faster = Comparison::new(200.0, 100.0, Better::Higher);
        assert_eq!(faster.ratio, Some(2.0));
        assert!(faster.ours_better);
        let slower_latency = Comparison::new(3.0, 2.0, Better::Lower);
        assert_eq!(slower_latency.ratio, Some(1.5));
        assert_eq!(
            Comparison::new(1.0, 3.0, Better::Higher).ratio,
            Some(0.333333)
        );
        assert!(!slower_latency.ours_better);
        let zero_peer = Comparison::new(1.0, 0.0, Better::Higher);
        assert_eq!(zero_peer.ratio, None);
    }
}
