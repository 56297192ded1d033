//! A small seeded pseudo-random generator (SplitMix64) for the deterministic mode: the
//! seeded task order of the loop and the injected socket faults. Not for cryptography.
//!
//! It is ours rather than a crate's because the stream of numbers must never change under
//! a user's feet: a seed written down in a failing test must replay the same run with every
//! later version of evloop.

/// SplitMix64 (Steele, Lea and Flood, 2014): one add and three xor-shift-multiplies per
/// number, and every seed, zero included, gives a full-period stream.
#[derive(Clone, Debug)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> SeededRng {
        SeededRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` must not be zero). The tiny bias of the modulo is
    /// irrelevant for choosing orders and faults.
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// True with probability `rate` (0.0: never, 1.0: always).
    pub fn chance(&mut self, rate: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        rate > 0.0 && unit < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let (mut a, mut b) = (SeededRng::new(7), SeededRng::new(7));
        let first: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        assert!(first.iter().all(|&x| x == b.next_u64()));
        assert_ne!(first, (0..5).map(|_| SeededRng::new(8).next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn below_stays_in_range_and_chance_respects_the_extremes() {
        let mut rng = SeededRng::new(1);
        assert!((0..1000).all(|_| rng.below(3) < 3));
        assert!((0..1000).all(|_| !rng.chance(0.0)));
        assert!((0..1000).all(|_| rng.chance(1.0)));
    }
}
