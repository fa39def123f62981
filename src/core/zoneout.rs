//! Zoneout's training masks, drawn from a seed: each element is 1 (the unit keeps its previous
//! value) with probability `rate`, else 0.
//!
//! The draws are `SplitMix64`'s stream (Steele, Lea and Flood, "Fast splittable pseudorandom
//! number generators", 2014): the `k`-th 64-bit value mixes `seed + k·γ`, and its low then high
//! 32 bits decide two consecutive elements. Element `i` depends only on the seed and `i`, so
//! the masks are the same on every machine and for every thread count.

use ndarray::Array3;

use super::Float;
use crate::error::{Error, Result};

/// `SplitMix64`'s increment γ, the odd integer nearest 2⁶⁴/φ.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The `k`-th value of `SplitMix64`'s stream from `seed`.
#[inline(always)]
fn split_mix(seed: u64, k: u64) -> u64 {
    let mut z = seed.wrapping_add(k.wrapping_add(1).wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One seed's stream of zoneout masks at one rate: element `i` is 1 where its 32-bit draw is
/// below `rate · 2³²` (rounded), so with probability `rate` to within 2⁻³³. The time loops
/// draw their masks from it row by row; [`masks`] draws a whole array.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    seed: u64,
    /// At most 2³², so a rate of 1 keeps every unit.
    threshold: u64,
}

impl Stream {
    /// The stream of `seed` at `rate`.
    ///
    /// # Errors
    /// [`Error::Value`] when `rate` is not in `[0, 1]`.
    pub fn new(seed: u64, rate: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Error::Value {
                argument: "rate".into(),
                expected: "a float between 0 and 1".into(),
                received: rate.to_string(),
            });
        }
        // Exact in f64 (a power of two times a value at most 1).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let threshold = (rate * 4_294_967_296.0).round() as u64;
        Ok(Self { seed, threshold })
    }

    /// Writes elements `first..first + out.len()` of the stream: element `2k` from the low 32
    /// bits of draw `k`, element `2k + 1` from its high 32 bits.
    #[inline(always)]
    pub fn fill<T: Float>(&self, first: u64, out: &mut [T]) {
        let (seed, threshold) = (self.seed, self.threshold);
        let (zero, one) = (T::zero(), T::one());
        let keep = |bits: u64| if bits < threshold { one } else { zero };
        // An odd first element is the high half of a draw.
        let (head, out) = out.split_at_mut(usize::from(first % 2 == 1).min(out.len()));
        if let [head] = head {
            *head = keep(split_mix(seed, first / 2) >> 32);
        }
        let k = first.div_ceil(2);
        let (pairs, rest) = out.as_chunks_mut::<2>();
        let last = k + pairs.len() as u64;
        for (k, pair) in (k..).zip(pairs) {
            let bits = split_mix(seed, k);
            *pair = [keep(bits & 0xffff_ffff), keep(bits >> 32)];
        }
        if let [odd] = rest {
            *odd = keep(split_mix(seed, last) & 0xffff_ffff);
        }
    }
}

/// A `shape` array of the 0/1 zoneout masks of [`Stream`]`(seed, rate)`, element `i` of the
/// array (row-major) being element `i` of the stream.
///
/// # Errors
/// [`Error::Value`] when `rate` is not in `[0, 1]`; [`Error::Allocation`] when the array's
/// memory cannot be obtained.
pub fn masks<T: Float>(seed: u64, rate: f64, shape: (usize, usize, usize)) -> Result<Array3<T>> {
    let stream = Stream::new(seed, rate)?;
    // SAFETY: `fill` writes every element.
    let mut a = unsafe { crate::cpu::alloc::overwritten(shape, "zoneout masks")? };
    let data = a.as_slice_mut().expect("a new array is contiguous");
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx512() {
        /// [`Stream::fill`] on 8 draws at a time (AVX-512's 64-bit multiplies).
        #[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512dq,avx512bw")]
        unsafe fn wide<T: Float>(stream: &Stream, data: &mut [T]) {
            stream.fill(0, data);
        }
        // SAFETY: the CPU has these extensions (checked just above).
        unsafe { wide(&stream, data) };
        return Ok(a);
    }
    stream.fill(0, data);
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_mix_follows_the_published_stream() {
        // The first outputs of the reference implementation (Vigna's splitmix64.c) from state 0.
        assert_eq!(split_mix(0, 0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(split_mix(0, 1), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn masks_are_zeros_and_ones_at_the_rate_and_repeat_with_the_seed() {
        let a = masks::<f32>(7, 0.3, (50, 40, 30)).unwrap();
        assert!(a.iter().all(|&v| v == 0.0 || v == 1.0));
        let share = f64::from(a.sum()) / a.len() as f64;
        // 60000 draws: the share's standard deviation is 0.0019.
        assert!((share - 0.3).abs() < 0.01, "share {share}");
        assert_eq!(a, masks::<f32>(7, 0.3, (50, 40, 30)).unwrap());
        assert_ne!(a, masks::<f32>(8, 0.3, (50, 40, 30)).unwrap());
        let b = masks::<f64>(7, 0.3, (50, 40, 30)).unwrap();
        assert_eq!(a.mapv(f64::from), b);
        // An odd length ends on the low half of a draw: a prefix of the longer stream.
        let odd = masks::<f32>(7, 0.3, (1, 1, 7)).unwrap();
        let flat: Vec<f32> = a.iter().take(7).copied().collect();
        assert_eq!(odd.iter().copied().collect::<Vec<_>>(), flat);
        // Any run of the stream, from an odd or even element, is that run of the whole array.
        let stream = Stream::new(7, 0.3).unwrap();
        for (first, len) in [(0, 5), (1, 1), (3, 8), (4, 7), (1001, 64)] {
            let mut run = vec![2.0f32; len];
            stream.fill(first as u64, &mut run);
            let want: Vec<f32> = a.iter().skip(first).take(len).copied().collect();
            assert_eq!(run, want, "from {first}");
        }
    }

    #[test]
    fn the_end_rates_and_errors() {
        assert!(masks::<f64>(1, 0.0, (3, 4, 5))
            .unwrap()
            .iter()
            .all(|&v| v == 0.0));
        assert!(masks::<f64>(1, 1.0, (3, 4, 5))
            .unwrap()
            .iter()
            .all(|&v| v == 1.0));
        assert_eq!(masks::<f32>(1, 0.5, (0, 4, 5)).unwrap().dim(), (0, 4, 5));
        let err = masks::<f32>(1, 1.5, (1, 1, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rate: expected a float between 0 and 1, received 1.5"
        );
        assert!(masks::<f32>(1, f64::NAN, (1, 1, 1)).is_err());
    }
}
