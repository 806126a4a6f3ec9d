//! The seeded random source of the generator.
//!
//! Only integer draws are used (and never `usize` ranges), so a seed gives
//! the same data on every platform; the values derived from them are
//! integer arithmetic too, with a single final division for decimals.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A seeded random source with the few draws the generator needs.
pub(crate) struct Rand(StdRng);

impl Rand {
    pub(crate) fn new(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }

    /// An integer in `lo..=hi`.
    pub(crate) fn int(&mut self, lo: i64, hi: i64) -> i64 {
        self.0.random_range(lo..=hi)
    }

    /// True with probability `per_mille` / 1000.
    pub(crate) fn chance(&mut self, per_mille: i64) -> bool {
        self.int(0, 999) < per_mille
    }

    /// An index into a non-empty collection of `len` items.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        let last = i64::try_from(len).unwrap_or(i64::MAX) - 1;
        usize::try_from(self.int(0, last.max(0))).unwrap_or(0)
    }

    /// One of `items`, which must not be empty.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.index(items.len())]
    }

    /// An index drawn with the given weights, passed as running totals
    /// (`cumulative[i]` = sum of weights `0..=i`, last one positive).
    pub(crate) fn weighted(&mut self, cumulative: &[u64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return 0;
        }
        let x = self.0.random_range(0..total);
        cumulative.partition_point(|&c| c <= x)
    }

    /// One of `options`, drawn by their per-mille weights (which should sum
    /// to 1000; any remainder goes to the last option).
    pub(crate) fn choose<T: Copy>(&mut self, options: &[(i64, T)]) -> T {
        let mut x = self.int(0, 999);
        for &(weight, value) in options {
            if x < weight {
                return value;
            }
            x -= weight;
        }
        options[options.len() - 1].1
    }
}

/// Running totals of `weights`, for [`Rand::weighted`].
pub(crate) fn cumulative(weights: impl IntoIterator<Item = u64>) -> Vec<u64> {
    weights
        .into_iter()
        .scan(0u64, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws() {
        let mut a = Rand::new(7);
        let mut b = Rand::new(7);
        let xs: Vec<i64> = (0..100).map(|_| a.int(0, 1_000_000)).collect();
        let ys: Vec<i64> = (0..100).map(|_| b.int(0, 1_000_000)).collect();
        assert_eq!(xs, ys);
        let mut c = Rand::new(8);
        let zs: Vec<i64> = (0..100).map(|_| c.int(0, 1_000_000)).collect();
        assert_ne!(xs, zs);
    }

    #[test]
    fn weighted_respects_zero_weights() {
        let mut r = Rand::new(1);
        let cum = cumulative([0, 3, 0, 1]);
        let mut hits = [0; 4];
        for _ in 0..1000 {
            hits[r.weighted(&cum)] += 1;
        }
        assert_eq!((hits[0], hits[2]), (0, 0));
        assert!(hits[1] > hits[3] && hits[3] > 100, "{hits:?}");
    }
}
