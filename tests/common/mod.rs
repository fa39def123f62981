//! Shared helpers for the Rust integration tests: deterministic random arrays and configs.
#![allow(dead_code)]

use ndarray::{Array, Array2, Array3, Dimension, IntoDimension};
use rnnkit::{Activation, CellKind, CellSpec};

/// A small deterministic generator (`SplitMix64`), so the tests need no random crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn array<D: Dimension>(
        &mut self,
        shape: impl IntoDimension<Dim = D>,
        scale: f64,
    ) -> Array<f64, D> {
        Array::from_shape_simple_fn(shape, || self.uniform(-scale, scale))
    }

    /// A `(batch, time)` mask with about `p_true` of the steps used.
    pub fn mask(&mut self, batch: usize, time: usize, p_true: f64) -> Array2<bool> {
        Array2::from_shape_simple_fn((batch, time), || self.uniform(0.0, 1.0) < p_true)
    }

    /// Inverted-dropout multipliers: 0 or `1 / (1 - rate)`.
    pub fn dropout(&mut self, gates: usize, batch: usize, dim: usize, rate: f64) -> Array3<f64> {
        Array3::from_shape_simple_fn((gates, batch, dim), || {
            if self.uniform(0.0, 1.0) < rate {
                0.0
            } else {
                1.0 / (1.0 - rate)
            }
        })
    }
}

/// The four cell variants.
pub const KINDS: [CellKind; 4] = [
    CellKind::SimpleRnn,
    CellKind::Gru { reset_after: true },
    CellKind::Gru { reset_after: false },
    CellKind::Lstm,
];

/// What a cell adds to Keras's: nothing, LSTM peepholes, an LSTM projection (to `units - 1`),
/// or both; layer normalisation (LSTM, GRU with `reset_after`), with an LSTM projection or not.
#[derive(Clone, Copy, Debug)]
pub enum Extra {
    Keras,
    Peephole,
    Projection,
    PeepholeProjection,
    LayerNorm,
    LayerNormProjection,
}

/// Every cell the core runs: Keras's four, IndRNN, LSTM with peepholes and/or projection, and
/// the layer-normalised LSTM (with a projection or not) and GRU.
pub const CELLS: [(CellKind, Extra); 11] = [
    (CellKind::SimpleRnn, Extra::Keras),
    (CellKind::Gru { reset_after: true }, Extra::Keras),
    (CellKind::Gru { reset_after: false }, Extra::Keras),
    (CellKind::Lstm, Extra::Keras),
    (CellKind::IndRnn, Extra::Keras),
    (CellKind::Lstm, Extra::Peephole),
    (CellKind::Lstm, Extra::Projection),
    (CellKind::Lstm, Extra::PeepholeProjection),
    (CellKind::Lstm, Extra::LayerNorm),
    (CellKind::Gru { reset_after: true }, Extra::LayerNorm),
    (CellKind::Lstm, Extra::LayerNormProjection),
];

/// The spec of one of [`CELLS`].
pub fn cell_spec(
    (kind, extra): (CellKind, Extra),
    units: usize,
    act: &str,
    ract: &str,
    use_bias: bool,
) -> CellSpec {
    let peephole = matches!(extra, Extra::Peephole | Extra::PeepholeProjection);
    let projection = matches!(
        extra,
        Extra::Projection | Extra::PeepholeProjection | Extra::LayerNormProjection
    );
    let layer_norm = matches!(extra, Extra::LayerNorm | Extra::LayerNormProjection);
    spec(kind, units, act, ract, use_bias)
        .with_peephole(peephole)
        .unwrap()
        .with_projection(projection.then(|| units - 1))
        .unwrap()
        .with_layer_norm(layer_norm)
        .unwrap()
}

pub fn spec(kind: CellKind, units: usize, act: &str, ract: &str, use_bias: bool) -> CellSpec {
    CellSpec::new(
        kind,
        units,
        Activation::from_name(act).unwrap(),
        Activation::from_name(ract).unwrap(),
        use_bias,
    )
    .unwrap()
}

/// Owned weights for `spec` over `input_dim` features.
pub struct OwnedWeights {
    pub kernel: Array2<f64>,
    pub recurrent_kernel: Array2<f64>,
    pub bias: Option<Array2<f64>>,
    pub peephole: Option<Array2<f64>>,
    pub projection: Option<Array2<f64>>,
    pub layer_norm: Option<Array2<f64>>,
    pub cell_norm: Option<Array2<f64>>,
}

impl OwnedWeights {
    pub fn random(rng: &mut Rng, spec: &CellSpec, input_dim: usize, scale: f64) -> Self {
        let w = spec.width();
        Self {
            kernel: rng.array((input_dim, w), scale),
            recurrent_kernel: rng.array(spec.recurrent_shape(), scale),
            bias: spec
                .use_bias
                .then(|| rng.array((spec.bias_rows(), w), scale)),
            peephole: spec.peephole.then(|| rng.array((3, spec.units), scale)),
            projection: spec.projection.map(|p| rng.array((spec.units, p), scale)),
            // Gains around one and a shift around zero, as training moves them.
            layer_norm: (spec.layer_norm).then(|| rng.array((2, w), scale) + 1.0),
            cell_norm: (spec.has_cell_norm()).then(|| {
                let mut a = rng.array((2, spec.units), scale);
                a.row_mut(0).mapv_inplace(|v| v + 1.0);
                a
            }),
        }
    }

    pub fn view(&self) -> rnnkit::Weights<'_, f64> {
        rnnkit::Weights {
            kernel: self.kernel.view(),
            recurrent_kernel: self.recurrent_kernel.view(),
            bias: self.bias.as_ref().map(|b| b.view()),
            peephole: self.peephole.as_ref().map(|p| p.view()),
            projection: self.projection.as_ref().map(|p| p.view()),
            layer_norm: self.layer_norm.as_ref().map(|p| p.view()),
            cell_norm: self.cell_norm.as_ref().map(|p| p.view()),
        }
    }
}

/// `a` rounded once to another float type, so f32 tests draw the same values as f64 ones.
pub fn cast<T: rnnkit::Float, D: Dimension>(a: &Array<f64, D>) -> Array<T, D> {
    a.mapv(T::lit)
}

/// A `(batch, time)` mask of a random pattern where row 0 is masked at both ends (and used in
/// between) and, with at least three rows, row 1 is fully masked. Needs `time >= 3`.
pub fn mixed_mask(rng: &mut Rng, batch: usize, time: usize) -> Array2<bool> {
    let mut mask = rng.mask(batch, time, 0.6);
    mask[[0, 0]] = false;
    mask[[0, 1]] = true;
    mask[[0, time - 1]] = false;
    if batch >= 3 {
        mask.row_mut(1).fill(false);
    }
    mask
}
