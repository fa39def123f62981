//! The pure-Rust core: cells, the sequence loop with masking and dropout, backpropagation
//! through time, and Bidirectional. No Python here.

pub mod activation;
pub mod bidirectional;
pub mod cancel;
pub mod cell;
pub mod conv;
pub mod engine;
pub mod hashing;
pub mod loss;
pub mod normalization;
pub mod optimizer;
pub mod sequence;
pub mod zoneout;

use std::fmt::Debug;

mod sealed {
    /// Keeps [`super::Float`] to f32 and f64 (the allocator relies on their zero bit pattern).
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// The element types the kernels are generic over: `f32` and `f64` (sealed).
pub trait Float:
    sealed::Sealed
    + num_traits::Float
    + num_traits::FromPrimitive
    + ndarray::LinalgScalar
    + ndarray::ScalarOperand
    + std::ops::AddAssign
    + std::ops::MulAssign
    + Send
    + Sync
    + Debug
    + Default
    + 'static
{
    /// The error function, which `num_traits::Float` lacks (GELU needs it).
    fn erf(self) -> Self;

    /// `exp(x)`, written so that loops over slices vectorize (f32: a polynomial within 2 ulp
    /// over the whole range; f64: the standard library's).
    fn exp_fast(self) -> Self;

    /// `tanh(x)` on the polynomial of [`Float::exp_fast`] (f32: within 4e-7 relative; f64: the
    /// standard library's).
    fn tanh_fast(self) -> Self;

    /// [`Float::exp_fast`] with fused multiply-adds: fewer instructions, as accurate. Only for
    /// code compiled for a CPU with FMA (the AVX2+FMA loops); elsewhere each `mul_add` is a slow
    /// library call.
    fn exp_fma(self) -> Self;

    /// [`Float::tanh_fast`] with fused multiply-adds, under the same condition as
    /// [`Float::exp_fma`].
    fn tanh_fma(self) -> Self;

    /// Converts an `f64` constant into this type.
    fn lit(value: f64) -> Self {
        Self::from_f64(value).expect("f64 constants convert to every Float")
    }
}

impl Float for f32 {
    fn erf(self) -> Self {
        libm::erff(self)
    }

    #[inline(always)]
    fn exp_fast(self) -> Self {
        exp_f32::<false>(self)
    }

    #[inline(always)]
    fn tanh_fast(self) -> Self {
        tanh_f32::<false>(self)
    }

    #[inline(always)]
    fn exp_fma(self) -> Self {
        exp_f32::<true>(self)
    }

    #[inline(always)]
    fn tanh_fma(self) -> Self {
        tanh_f32::<true>(self)
    }
}

/// `a · b + c`: one fused multiply-add with `FMA`, else a multiply and an add.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

#[inline(always)]
fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    let (em1, scale) = exp_parts::<FMA>(x);
    // A NaN `x` stays NaN through `clamp`, and so through `em1`.
    (em1 + 1.0) * scale
}

/// `(exp(r) - 1, 2^n)` with `exp(x) = 2^n · exp(r)`, `x` clamped to exp's f32 range.
#[inline(always)]
fn exp_parts<const FMA: bool>(x: f32) -> (f32, f32) {
    // n = round(x / ln 2) and |r| <= ln 2 / 2 (ln 2 in two parts, the first exact in n · C1);
    // exp(r) by its degree-6 minimax polynomial. Rounding adds and subtracts 1.5·2^23 so no
    // floor call (a libm call without SSE4.1) breaks vectorization.
    const ROUND: f32 = 12_582_912.0;
    let clamped = x.clamp(-87.33, 88.72);
    let n = madd::<FMA>(clamped, std::f32::consts::LOG2_E, ROUND) - ROUND;
    let r = madd::<FMA>(n, 2.121_944_4e-4, madd::<FMA>(n, -0.693_359_4, clamped));
    let mut p = 1.987_569_1e-4;
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = madd::<FMA>(p, r, c);
    }
    // 2^n: `n + 127` sits in the low mantissa bits of `n + 127 + 1.5·2^23` (exact, as n is a
    // small integer), and shifting them into the exponent field needs no float-to-int
    // conversion (whose saturating semantics cost a third of this function).
    let scale = f32::from_bits((n + (ROUND + 127.0)).to_bits() << 23);
    (madd::<FMA>(p * r, r, r), scale)
}

#[inline(always)]
fn tanh_f32<const FMA: bool>(x: f32) -> f32 {
    // tanh(x) = m / (m + 2) with m = expm1(2x) = 2^n · expm1(r) + (2^n - 1), which has no
    // cancellation near 0: no series and no branch there. Beyond |x| = 10 tanh rounds to ±1,
    // and the clamp keeps 2^n finite.
    let (em1, scale) = exp_parts::<FMA>(2.0 * x.clamp(-10.0, 10.0));
    let m = madd::<FMA>(scale, em1, scale - 1.0);
    m / (m + 2.0)
}

impl Float for f64 {
    fn erf(self) -> Self {
        libm::erf(self)
    }

    #[inline(always)]
    fn exp_fast(self) -> Self {
        self.exp()
    }

    #[inline(always)]
    fn tanh_fast(self) -> Self {
        self.tanh()
    }

    #[inline(always)]
    fn exp_fma(self) -> Self {
        self.exp()
    }

    #[inline(always)]
    fn tanh_fma(self) -> Self {
        self.tanh()
    }
}

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn fast_f32_exp_and_tanh_are_accurate_everywhere() {
        type Function = fn(f32) -> f32;
        let variants: [(&str, Function, Function); 2] = [
            ("fast", f32::exp_fast, f32::tanh_fast),
            ("fma", f32::exp_fma, f32::tanh_fma),
        ];
        for (name, exp, tanh) in variants {
            let mut worst_exp = 0.0f64;
            let mut worst_tanh = 0.0f64;
            let mut x = -90.0f32;
            while x < 90.0 {
                let exact = (x as f64).exp();
                if exact > 1e-37 && exact < 1e38 {
                    worst_exp = worst_exp.max(((exp(x) as f64) - exact).abs() / exact);
                }
                let t = (x as f64).tanh();
                let err = ((tanh(x) as f64) - t).abs() / t.abs().max(1e-30);
                worst_tanh = worst_tanh.max(if x == 0.0 { 0.0 } else { err });
                x += 0.001_37;
            }
            assert!(
                worst_exp < 2.5e-7,
                "{name}: exp relative error {worst_exp:e}"
            );
            assert!(
                worst_tanh < 4e-7,
                "{name}: tanh relative error {worst_tanh:e}"
            );
            assert!(exp(f32::NAN).is_nan() && tanh(f32::NAN).is_nan(), "{name}");
            assert_eq!(tanh(f32::INFINITY), 1.0, "{name}");
            assert_eq!(tanh(f32::NEG_INFINITY), -1.0, "{name}");
            assert_eq!(exp(f32::NEG_INFINITY), exp(-87.33), "{name}");
        }
    }
}
