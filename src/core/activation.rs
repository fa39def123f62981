//! Element-wise activations accepted by name, with Keras 3's definitions, and their derivatives.

use super::Float;
use crate::error::{Error, Result};

/// An element-wise activation function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Keras's `linear`.
    Linear,
    /// Keras's `tanh`.
    Tanh,
    /// Keras's `sigmoid`.
    Sigmoid,
    /// Keras 3: `relu6(x + 3) / 6`.
    HardSigmoid,
    /// Keras's `relu`.
    Relu,
    /// Keras's `relu6`.
    Relu6,
    /// Keras 3 default slope 0.2.
    LeakyRelu,
    /// Keras's `elu`.
    Elu,
    /// Keras's `selu`.
    Selu,
    /// Keras's `softplus`.
    Softplus,
    /// Keras's `softsign`.
    Softsign,
    /// Keras's `soft_shrink`.
    SoftShrink,
    /// Keras's `sparse_plus`.
    SparsePlus,
    /// Keras's `silu`.
    Silu,
    /// Keras's `hard_silu`.
    HardSilu,
    /// Keras's `squareplus`.
    Squareplus,
    /// The exact (erf) form, Keras's default `approximate=False`.
    Gelu,
    /// Keras's `celu`.
    Celu,
    /// Keras's `mish`.
    Mish,
    /// Keras's `tanh_shrink`.
    TanhShrink,
    /// Keras's `hard_tanh`.
    HardTanh,
    /// Keras's `exponential`.
    Exponential,
    /// Keras's `log_sigmoid`.
    LogSigmoid,
    /// `x` where `|x| > 0.5`, else 0.
    HardShrink,
    /// Piecewise linear: 0 below -1, 1 above 1, `(x + 1) / 2` between.
    SparseSigmoid,
}

/// Every accepted name with its activation; aliases share an entry's variant.
const NAMES: &[(&str, Activation)] = &[
    ("linear", Activation::Linear),
    ("tanh", Activation::Tanh),
    ("sigmoid", Activation::Sigmoid),
    ("hard_sigmoid", Activation::HardSigmoid),
    ("relu", Activation::Relu),
    ("relu6", Activation::Relu6),
    ("leaky_relu", Activation::LeakyRelu),
    ("elu", Activation::Elu),
    ("selu", Activation::Selu),
    ("softplus", Activation::Softplus),
    ("softsign", Activation::Softsign),
    ("soft_shrink", Activation::SoftShrink),
    ("sparse_plus", Activation::SparsePlus),
    ("silu", Activation::Silu),
    ("swish", Activation::Silu),
    ("hard_silu", Activation::HardSilu),
    ("hard_swish", Activation::HardSilu),
    ("squareplus", Activation::Squareplus),
    ("gelu", Activation::Gelu),
    ("celu", Activation::Celu),
    ("mish", Activation::Mish),
    ("tanh_shrink", Activation::TanhShrink),
    ("hard_tanh", Activation::HardTanh),
    ("exponential", Activation::Exponential),
    ("log_sigmoid", Activation::LogSigmoid),
    ("hard_shrink", Activation::HardShrink),
    ("sparse_sigmoid", Activation::SparseSigmoid),
];

const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
const LEAKY_SLOPE: f64 = 0.2;
const SHRINK_THRESHOLD: f64 = 0.5;
const SQUAREPLUS_B: f64 = 4.0;

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).exp_fast())
}

/// `log(1 + exp(x))` without overflow for large `x`.
fn softplus<T: Float>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

impl Activation {
    /// Looks an activation up by its Keras name (`None` in Keras is `"linear"` here).
    pub fn from_name(name: &str) -> Result<Self> {
        Self::parse("activation", name)
    }

    /// Parses the name given as `argument` (which a bad name's error names).
    pub fn parse(argument: &str, name: &str) -> Result<Self> {
        NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| Error::Value {
                argument: argument.into(),
                expected: format!("one of {}", Self::names().join(", ")),
                received: format!("'{name}'"),
            })
    }

    /// All accepted names, aliases included.
    pub fn names() -> Vec<&'static str> {
        NAMES.iter().map(|(n, _)| *n).collect()
    }

    /// The canonical name of this activation.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .expect("every variant is in NAMES")
    }

    /// `f(x)`.
    #[inline]
    pub fn apply<T: Float>(self, x: T) -> T {
        let zero = T::zero();
        let one = T::one();
        match self {
            Self::Linear => x,
            Self::Tanh => x.tanh_fast(),
            Self::Sigmoid => sigmoid(x),
            Self::HardSigmoid => (x / T::lit(6.0) + T::lit(0.5)).max(zero).min(one),
            Self::Relu => x.max(zero),
            Self::Relu6 => x.max(zero).min(T::lit(6.0)),
            Self::LeakyRelu => {
                if x >= zero {
                    x
                } else {
                    T::lit(LEAKY_SLOPE) * x
                }
            }
            Self::Elu => {
                if x > zero {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Self::Selu => {
                let s = T::lit(SELU_SCALE);
                if x > zero {
                    s * x
                } else {
                    s * T::lit(SELU_ALPHA) * x.exp_m1()
                }
            }
            Self::Softplus => softplus(x),
            Self::Softsign => x / (one + x.abs()),
            Self::SoftShrink => {
                let t = T::lit(SHRINK_THRESHOLD);
                if x > t {
                    x - t
                } else if x < -t {
                    x + t
                } else {
                    zero
                }
            }
            Self::SparsePlus => {
                if x <= -one {
                    zero
                } else if x >= one {
                    x
                } else {
                    (x + one) * (x + one) / T::lit(4.0)
                }
            }
            Self::Silu => x * sigmoid(x),
            Self::HardSilu => x * Self::HardSigmoid.apply(x),
            Self::Squareplus => (x + (x * x + T::lit(SQUAREPLUS_B)).sqrt()) / T::lit(2.0),
            Self::Gelu => T::lit(0.5) * x * (one + (x / T::lit(std::f64::consts::SQRT_2)).erf()),
            Self::Celu => x.max(zero) + x.exp_m1().min(zero),
            Self::Mish => x * softplus(x).tanh(),
            Self::TanhShrink => x - x.tanh(),
            Self::HardTanh => x.max(-one).min(one),
            Self::Exponential => x.exp(),
            Self::LogSigmoid => -softplus(-x),
            Self::HardShrink => {
                if x.abs() > T::lit(SHRINK_THRESHOLD) {
                    x
                } else {
                    zero
                }
            }
            Self::SparseSigmoid => ((x + one) / T::lit(2.0)).max(zero).min(one),
        }
    }

    /// [`Activation::apply`] with tanh and sigmoid on fused multiply-adds ([`Float::exp_fma`]):
    /// only for code compiled for a CPU with FMA.
    #[inline]
    pub fn apply_fma<T: Float>(self, x: T) -> T {
        match self {
            Self::Tanh => x.tanh_fma(),
            Self::Sigmoid => T::one() / (T::one() + (-x).exp_fma()),
            _ => self.apply(x),
        }
    }

    /// `f'(x)`, given `y = f(x)` so the common cases (tanh, sigmoid) cost one multiply.
    #[inline]
    pub fn derivative<T: Float>(self, x: T, y: T) -> T {
        let zero = T::zero();
        let one = T::one();
        let step = |c: bool| if c { one } else { zero };
        match self {
            Self::Linear => one,
            Self::Tanh => one - y * y,
            Self::Sigmoid => y * (one - y),
            Self::HardSigmoid => step(x > T::lit(-3.0) && x < T::lit(3.0)) / T::lit(6.0),
            Self::Relu => step(x > zero),
            Self::Relu6 => step(x > zero && x < T::lit(6.0)),
            Self::LeakyRelu => {
                if x >= zero {
                    one
                } else {
                    T::lit(LEAKY_SLOPE)
                }
            }
            Self::Elu => {
                if x > zero {
                    one
                } else {
                    y + one
                }
            }
            Self::Selu => {
                if x > zero {
                    T::lit(SELU_SCALE)
                } else {
                    y + T::lit(SELU_SCALE * SELU_ALPHA)
                }
            }
            Self::Softplus => sigmoid(x),
            Self::Softsign => {
                let d = one + x.abs();
                one / (d * d)
            }
            Self::SoftShrink => step(x.abs() > T::lit(SHRINK_THRESHOLD)),
            Self::SparsePlus => {
                if x <= -one {
                    zero
                } else if x >= one {
                    one
                } else {
                    (x + one) / T::lit(2.0)
                }
            }
            Self::Silu => {
                let s = sigmoid(x);
                s + x * s * (one - s)
            }
            Self::HardSilu => {
                Self::HardSigmoid.apply(x) + x * Self::HardSigmoid.derivative(x, zero)
            }
            Self::Squareplus => (one + x / (x * x + T::lit(SQUAREPLUS_B)).sqrt()) / T::lit(2.0),
            Self::Gelu => {
                let cdf = T::lit(0.5) * (one + (x / T::lit(std::f64::consts::SQRT_2)).erf());
                let pdf =
                    (-(x * x) / T::lit(2.0)).exp() / T::lit((2.0 * std::f64::consts::PI).sqrt());
                cdf + x * pdf
            }
            Self::Celu => {
                if x > zero {
                    one
                } else {
                    x.exp()
                }
            }
            Self::Mish => {
                let t = softplus(x).tanh();
                t + x * (one - t * t) * sigmoid(x)
            }
            Self::TanhShrink => {
                let t = x.tanh();
                t * t
            }
            Self::HardTanh => step(x > -one && x < one),
            Self::Exponential => y,
            Self::LogSigmoid => sigmoid(-x),
            Self::HardShrink => step(x.abs() > T::lit(SHRINK_THRESHOLD)),
            Self::SparseSigmoid => step(x > -one && x < one) / T::lit(2.0),
        }
    }
}

/// A cell's activation pair (`activation`, `recurrent_activation`) as the step math uses it.
///
/// The sequence loop picks the implementation once per call: the common pairs as a
/// [`FixedPair`] type, so the per-row loops inline the functions and vectorize, and any other
/// pair through [`AnyPair`], which dispatches per element. Both compute the same values, up to
/// rounding where the fixed pair fuses multiply-adds.
pub trait Pointwise<T: Float>: Sync {
    /// `activation(x)`.
    fn act(&self, x: T) -> T;
    /// `activation'(x)` given `y = activation(x)`.
    fn act_d(&self, x: T, y: T) -> T;
    /// `recurrent_activation(x)`.
    fn ract(&self, x: T) -> T;
    /// `recurrent_activation'(x)` given `y = recurrent_activation(x)`.
    fn ract_d(&self, x: T, y: T) -> T;
}

/// An activation fixed at compile time.
pub trait Fixed: Sync {
    /// The activation this type stands for.
    const ACTIVATION: Activation;
}

macro_rules! fixed {
    ($($name:ident),*) => {$(
        #[doc = concat!("[`Activation::", stringify!($name), "`] as a type.")]
        pub struct $name;
        impl Fixed for $name {
            const ACTIVATION: Activation = Activation::$name;
        }
    )*};
}
fixed!(Tanh, Sigmoid, Relu, HardSigmoid);

/// A pair of activations fixed at compile time; with `FMA`, tanh and sigmoid run on fused
/// multiply-adds (for the loops compiled for AVX2+FMA: see [`Activation::apply_fma`]).
pub struct FixedPair<A, R, const FMA: bool>(std::marker::PhantomData<(A, R)>);

impl<A, R, const FMA: bool> FixedPair<A, R, FMA> {
    /// The pair (a type-level value: it holds nothing).
    pub const fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<A, R, const FMA: bool> Default for FixedPair<A, R, FMA> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float, A: Fixed, R: Fixed, const FMA: bool> Pointwise<T> for FixedPair<A, R, FMA> {
    #[inline(always)]
    fn act(&self, x: T) -> T {
        if FMA {
            A::ACTIVATION.apply_fma(x)
        } else {
            A::ACTIVATION.apply(x)
        }
    }
    #[inline(always)]
    fn act_d(&self, x: T, y: T) -> T {
        A::ACTIVATION.derivative(x, y)
    }
    #[inline(always)]
    fn ract(&self, x: T) -> T {
        if FMA {
            R::ACTIVATION.apply_fma(x)
        } else {
            R::ACTIVATION.apply(x)
        }
    }
    #[inline(always)]
    fn ract_d(&self, x: T, y: T) -> T {
        R::ACTIVATION.derivative(x, y)
    }
}

/// Any pair of activations, dispatched per element.
pub struct AnyPair(pub Activation, pub Activation);

impl<T: Float> Pointwise<T> for AnyPair {
    fn act(&self, x: T) -> T {
        self.0.apply(x)
    }
    fn act_d(&self, x: T, y: T) -> T {
        self.0.derivative(x, y)
    }
    fn ract(&self, x: T) -> T {
        self.1.apply(x)
    }
    fn ract_d(&self, x: T, y: T) -> T {
        self.1.derivative(x, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_derivative_matches_central_differences() {
        let h = 1e-6;
        for (name, act) in NAMES {
            // Points away from every kink (0, ±0.5, ±1, ±3, 6).
            for &x in &[-4.2f64, -2.1, -0.77, -0.3, 0.2, 0.61, 1.4, 2.7, 5.1, 7.3] {
                let numeric = (act.apply(x + h) - act.apply(x - h)) / (2.0 * h);
                let analytic = act.derivative(x, act.apply(x));
                assert!(
                    (numeric - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
                    "{name} at {x}: numeric {numeric}, analytic {analytic}"
                );
            }
        }
    }

    #[test]
    fn keras_reference_values() {
        // Made with Keras 3.15.1, KERAS_BACKEND=numpy:
        //   x = np.array([-1.5, 0.5, 2.0])
        //   for n in names: print(n, keras.activations.get(n)(x))
        let x = [-1.5f64, 0.5, 2.0];
        let cases: &[(&str, [f64; 3])] = &[
            ("hard_sigmoid", [0.25, 0.583_333_33, 0.833_333_33]),
            ("selu", [-1.365_814_3, 0.525_350_5, 2.101_402]),
            ("gelu", [-0.100_210_77, 0.345_731_23, 1.954_499_7]),
            ("leaky_relu", [-0.3, 0.5, 2.0]),
            ("softsign", [-0.6, 0.333_333_34, 0.666_666_7]),
            ("celu", [-0.776_869_83, 0.5, 2.0]),
            ("sparse_plus", [0.0, 0.5625, 2.0]),
            ("squareplus", [0.5, 1.280_776_4, 2.414_213_7]),
            ("soft_shrink", [-1.0, 0.0, 1.5]),
            ("hard_silu", [-0.375, 0.291_666_66, 1.666_666_7]),
            ("mish", [-0.298_099_76, 0.375_245_18, 1.943_958_9]),
            ("log_sigmoid", [-1.701_413_3, -0.474_077, -0.126_928]),
            ("tanh_shrink", [-0.594_851_8, 0.037_882_8, 1.035_972_4]),
            ("hard_tanh", [-1.0, 0.5, 1.0]),
            ("relu6", [0.0, 0.5, 2.0]),
            ("elu", [-0.776_869_83, 0.5, 2.0]),
            ("silu", [-0.273_638_3, 0.311_229_68, 1.761_594]),
            ("softplus", [0.201_413_29, 0.974_077, 2.126_928]),
            ("hard_shrink", [-1.5, 0.0, 2.0]),
            ("sparse_sigmoid", [0.0, 0.75, 1.0]),
            ("exponential", [0.223_130_15, 1.648_721_2, 7.389_055_7]),
        ];
        for (name, expected) in cases {
            let act = Activation::from_name(name).unwrap();
            for (xi, ei) in x.iter().zip(expected) {
                let y = act.apply(*xi);
                assert!(
                    (y - ei).abs() < 1e-6 * (1.0 + ei.abs()),
                    "{name}({xi}) = {y}, Keras {ei}"
                );
            }
        }
    }

    #[test]
    fn unknown_name_lists_the_accepted_ones() {
        let err = Activation::from_name("tanhh").unwrap_err().to_string();
        assert!(
            err.starts_with("activation: expected one of linear, tanh"),
            "{err}"
        );
        assert!(err.ends_with("received 'tanhh'"), "{err}");
    }
}
