//! Which steps a validator checks: `k` distinct steps drawn with the operating system's
//! randomness after the result is posted, so a worker cannot know in advance which steps will be
//! re-executed. A worker that falsified a fraction `f` of the steps escapes `k` samples with
//! probability `(1 - f)^k` (without replacement, a little less).

use rand::RngCore;
use rand::seq::index::sample;

/// `k` distinct steps of `0..steps` (all of them when `k ≥ steps`), in increasing order, drawn
/// from `rng`.
pub fn pick_steps(rng: &mut impl RngCore, steps: u64, k: usize) -> Vec<u64> {
    let n = usize::try_from(steps).unwrap_or(usize::MAX);
    let mut picked: Vec<u64> = if k >= n {
        (0..steps).collect()
    } else {
        sample(rng, n, k).into_iter().map(|i| i as u64).collect()
    };
    picked.sort_unstable();
    picked
}

/// The chance that `k` samples with replacement miss every one of a fraction `f` of falsified
/// steps: `(1 - f)^k`. Detection is one minus this.
pub fn escape_probability(f: f64, k: u32) -> f64 {
    (1.0 - f).powi(k as i32)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn picks_are_distinct_sorted_and_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        for (steps, k) in [(10, 3), (300, 16), (5, 9), (1, 1)] {
            let p = pick_steps(&mut rng, steps, k);
            assert_eq!(p.len(), k.min(steps as usize));
            assert!(p.windows(2).all(|w| w[0] < w[1]));
            assert!(p.iter().all(|&s| s < steps));
        }
        assert!((escape_probability(0.1, 10) - 0.348_678_440_1).abs() < 1e-9);
    }
}
