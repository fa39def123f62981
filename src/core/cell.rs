//! The cells, their Keras weight layouts (and the extra weights of the variants beyond Keras:
//! IndRNN's recurrent vector, LSTM peepholes), and their per-row step math.
//!
//! A cell's step splits into products (done by the sequence loop for a whole block of rows at
//! once) and the element-wise math here, written per row over slices: `gates` pre-activations in
//! Keras's gate order (LSTM i, f, c, o; GRU z, r, h), each block `units` wide.

use ndarray::ArrayView2;

use super::activation::{Activation, Pointwise};
use super::Float;
use crate::error::{check_shape, Error, Result};

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// `h = act(x·W + h₋₁·U + b)`.
    SimpleRnn,
    /// Gated recurrent unit; `reset_after` applies the reset gate after the recurrent product
    /// (Keras's default, cuDNN's form) and gives it its own bias row.
    Gru {
        /// Whether the reset gate applies after the recurrent product.
        reset_after: bool,
    },
    /// Long short-term memory, states `[h, c]`.
    Lstm,
    /// Independently recurrent network (Li et al., 2018): `h = act(x·W + u ⊙ h₋₁ + b)`, its
    /// recurrent weight a vector `u` (one weight per unit).
    IndRnn,
}

impl CellKind {
    /// The names [`CellKind::from_name`] accepts, as error messages list them.
    pub const EXPECTED: &str = "one of 'simple_rnn', 'gru', 'lstm', 'indrnn'";

    /// Parses `"simple_rnn"`, `"gru"` (with `reset_after`, ignored by the others), `"lstm"` or
    /// `"indrnn"`.
    pub fn from_name(name: &str, reset_after: bool) -> Result<Self> {
        match name {
            "simple_rnn" => Ok(Self::SimpleRnn),
            "gru" => Ok(Self::Gru { reset_after }),
            "lstm" => Ok(Self::Lstm),
            "indrnn" => Ok(Self::IndRnn),
            other => Err(Error::Value {
                argument: "kind".into(),
                expected: Self::EXPECTED.into(),
                received: format!("'{other}'"),
            }),
        }
    }

    /// The name [`CellKind::from_name`] parses.
    pub fn name(self) -> &'static str {
        match self {
            Self::SimpleRnn => "simple_rnn",
            Self::Gru { .. } => "gru",
            Self::Lstm => "lstm",
            Self::IndRnn => "indrnn",
        }
    }
}

/// The shape and functions of a cell: everything but its weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellSpec {
    /// Which cell.
    pub kind: CellKind,
    /// The size of the state (and of each gate block).
    pub units: usize,
    /// The activation of the candidate state and output.
    pub activation: Activation,
    /// The gates' activation (GRU and LSTM; unused by SimpleRNN).
    pub recurrent_activation: Activation,
    /// Whether the cell has a bias.
    pub use_bias: bool,
    /// LSTM only: peephole connections (ONNX's and oneDNN's), `i` and `f` reading `c₋₁` and
    /// `o` reading `c` through per-unit weights.
    pub peephole: bool,
    /// LSTM only: the size of a projected `h = (o ⊙ act(c))·W_hr` (PyTorch's `proj_size`); `h`,
    /// the output and the recurrent kernel's rows then have this size, `c` keeps `units`.
    pub projection: Option<usize>,
    /// LSTM and GRU (`reset_after`): layer normalisation as haste's LayerNormLSTM/GRU define it.
    /// The input product `x·W` and the recurrent product `h₋₁·U` are each normalised over the
    /// whole gate vector (all `gates·units` columns at once) and scaled by their own gains
    /// ([`Weights::layer_norm`]); the cell's bias is their shift. An LSTM also normalises its
    /// cell state before the output activation, with a gain and a bias ([`Weights::cell_norm`]):
    /// `h = o ⊙ act(γ_c ⊙ LN(c) + β_c)`, `c` itself carried unnormalised.
    pub layer_norm: bool,
}

/// The `ε` added to the variance in every layer normalisation (PyTorch's and haste's).
pub const LAYER_NORM_EPSILON: f64 = 1e-5;

/// A cell's weights in Keras's layout: `kernel (input_dim, gates·units)`,
/// `recurrent_kernel (units, gates·units)` (IndRNN: `(1, units)`, the vector `u`; a projected
/// LSTM: `(projection, 4·units)`),
/// `bias (rows, gates·units)` with two rows (input, recurrent) for GRU with `reset_after`, one
/// otherwise; then the extra weights of the variants.
#[derive(Clone, Copy, Debug)]
pub struct Weights<'a, T> {
    /// `W`, applied to the input.
    pub kernel: ArrayView2<'a, T>,
    /// `U`, applied to the previous `h`.
    pub recurrent_kernel: ArrayView2<'a, T>,
    /// `b`; `None` without bias.
    pub bias: Option<ArrayView2<'a, T>>,
    /// `(3, units)` peephole weights `p_i, p_f, p_o` with [`CellSpec::peephole`], else `None`.
    pub peephole: Option<ArrayView2<'a, T>>,
    /// `(units, projection)` projection `W_hr` with [`CellSpec::projection`], else `None`.
    pub projection: Option<ArrayView2<'a, T>>,
    /// `(2, gates·units)` gains `[γ_x, γ_h]` of the input and recurrent products' layer
    /// normalisation with [`CellSpec::layer_norm`], else `None`.
    pub layer_norm: Option<ArrayView2<'a, T>>,
    /// `(2, units)` gain and bias `[γ_c, β_c]` of an LSTM's cell-state normalisation with
    /// [`CellSpec::layer_norm`], else `None`.
    pub cell_norm: Option<ArrayView2<'a, T>>,
}

impl CellSpec {
    /// A spec, rejecting `units == 0`.
    pub fn new(
        kind: CellKind,
        units: usize,
        activation: Activation,
        recurrent_activation: Activation,
        use_bias: bool,
    ) -> Result<Self> {
        if units == 0 {
            return Err(Error::Value {
                argument: "units".into(),
                expected: "a positive integer".into(),
                received: "0".into(),
            });
        }
        Ok(Self {
            kind,
            units,
            activation,
            recurrent_activation,
            use_bias,
            peephole: false,
            projection: None,
            layer_norm: false,
        })
    }

    /// This spec with layer normalisation on (or off): LSTM (without peepholes) and GRU with
    /// `reset_after` only, as haste defines them.
    pub fn with_layer_norm(self, layer_norm: bool) -> Result<Self> {
        let refused = match self.kind {
            _ if !layer_norm => None,
            CellKind::Lstm if self.peephole => Some("an LSTM with peepholes".to_string()),
            CellKind::Lstm | CellKind::Gru { reset_after: true } => None,
            CellKind::Gru { reset_after: false } => Some("'gru' with reset_after=false".into()),
            other => Some(format!("'{}'", other.name())),
        };
        if let Some(cell) = refused {
            return Err(Error::Value {
                argument: "layer_norm".into(),
                expected: "false for a cell other than 'lstm' (without peepholes) or 'gru' with \
                           reset_after"
                    .into(),
                received: format!("true for {cell}"),
            });
        }
        Ok(Self { layer_norm, ..self })
    }

    /// The columns of the layer-normalisation weights after the gains: an LSTM's cell-state
    /// gain and bias, `(2, units)`.
    pub fn has_cell_norm(&self) -> bool {
        self.layer_norm && self.kind == CellKind::Lstm
    }

    /// This spec with `h` projected to `projection` units (or not, with `None`); only LSTM
    /// projects, to a size between 1 and `units - 1` (as PyTorch's `proj_size`).
    pub fn with_projection(self, projection: Option<usize>) -> Result<Self> {
        if let Some(p) = projection {
            let refuse = |expected: String| Error::Value {
                argument: "projection".into(),
                expected,
                received: p.to_string(),
            };
            if self.kind != CellKind::Lstm {
                return Err(refuse(format!(
                    "None for a cell other than 'lstm' ('{}')",
                    self.kind.name()
                )));
            }
            if p == 0 || p >= self.units {
                return Err(refuse(format!(
                    "None or an integer from 1 to units - 1 = {}",
                    self.units - 1
                )));
            }
        }
        Ok(Self { projection, ..self })
    }

    /// The size of `h` and of the output: the projection's, else `units`.
    pub fn output_units(&self) -> usize {
        self.projection.unwrap_or(self.units)
    }

    /// The size of state `i` (`h`, then LSTM's `c`).
    pub fn state_units(&self, i: usize) -> usize {
        if i == 0 {
            self.output_units()
        } else {
            self.units
        }
    }

    /// This spec with peephole connections on (or off); only LSTM has them, and not with
    /// [`CellSpec::layer_norm`].
    pub fn with_peephole(self, peephole: bool) -> Result<Self> {
        if peephole && self.layer_norm {
            return Err(Error::Value {
                argument: "peephole".into(),
                expected: "false for a layer-normalised cell".into(),
                received: "true".into(),
            });
        }
        if peephole && self.kind != CellKind::Lstm {
            return Err(Error::Value {
                argument: "peephole".into(),
                expected: "false for a cell other than 'lstm'".into(),
                received: format!("true for '{}'", self.kind.name()),
            });
        }
        Ok(Self { peephole, ..self })
    }

    /// Gate blocks in the kernels: 1, 3 or 4.
    pub fn gates(&self) -> usize {
        match self.kind {
            CellKind::SimpleRnn | CellKind::IndRnn => 1,
            CellKind::Gru { .. } => 3,
            CellKind::Lstm => 4,
        }
    }

    /// `gates · units`, the kernels' column count.
    pub fn width(&self) -> usize {
        self.gates() * self.units
    }

    /// The shape of the recurrent kernel: `(output units, gates·units)`, IndRNN's `(1, units)`.
    pub fn recurrent_shape(&self) -> [usize; 2] {
        match self.kind {
            CellKind::IndRnn => [1, self.units],
            _ => [self.output_units(), self.width()],
        }
    }

    /// The multiply-adds of a forward pass over `batch · time` steps of `features` inputs (the
    /// two products; the backward pass costs twice as many). Saturates instead of overflowing.
    pub fn multiply_adds(&self, batch: usize, time: usize, features: usize) -> usize {
        let products = |n: usize, k: usize| {
            [batch, time, n, k]
                .into_iter()
                .fold(1, usize::saturating_mul)
        };
        let projection = self.projection.map_or(0, |p| products(self.units, p));
        products(
            self.width(),
            features.saturating_add(self.recurrent_shape()[0]),
        )
        .saturating_add(projection)
    }

    /// Whether the cell uses Keras's default pair, tanh and sigmoid.
    pub fn has_default_activations(&self) -> bool {
        (self.activation, self.recurrent_activation) == (Activation::Tanh, Activation::Sigmoid)
    }

    /// State tensors: 2 for LSTM (`h`, `c`), 1 otherwise.
    pub fn state_count(&self) -> usize {
        if self.kind == CellKind::Lstm {
            2
        } else {
            1
        }
    }

    /// Rows of the bias: 2 for GRU with `reset_after`, else 1.
    pub fn bias_rows(&self) -> usize {
        if self.kind == (CellKind::Gru { reset_after: true }) {
            2
        } else {
            1
        }
    }

    /// Checks the weights' shapes against this spec and an input of `input_dim` features.
    pub fn check_weights<T>(&self, weights: &Weights<T>, input_dim: usize) -> Result<()> {
        let width = self.width();
        check_shape("kernel", &[input_dim, width], weights.kernel.shape())?;
        check_shape(
            "recurrent_kernel",
            &self.recurrent_shape(),
            weights.recurrent_kernel.shape(),
        )?;
        match (self.peephole, &weights.peephole) {
            (true, Some(p)) => check_shape("peephole", &[3, self.units], p.shape())?,
            (false, None) => {}
            (true, None) => return Err(missing("peephole", "peephole is true")),
            (false, Some(_)) => return Err(unexpected("peephole", "peephole is false")),
        }
        match (self.projection, &weights.projection) {
            (Some(p), Some(w)) => check_shape("projection", &[self.units, p], w.shape())?,
            (None, None) => {}
            (Some(_), None) => return Err(missing("projection", "the spec projects")),
            (None, Some(_)) => return Err(unexpected("projection", "the spec has no projection")),
        }
        let norm_shape = [2, width];
        check_extra(
            "layer_norm",
            self.layer_norm,
            &norm_shape,
            weights.layer_norm,
        )?;
        let cell_shape = [2, self.units];
        check_extra(
            "cell_norm",
            self.has_cell_norm(),
            &cell_shape,
            weights.cell_norm,
        )?;
        match (self.use_bias, &weights.bias) {
            (true, Some(b)) => check_shape("bias", &[self.bias_rows(), width], b.shape()),
            (false, None) => Ok(()),
            (true, None) => Err(missing("bias", "use_bias is true")),
            (false, Some(_)) => Err(unexpected("bias", "use_bias is false")),
        }
    }
}

/// Checks an optional weight of `shape` that the spec has (`has`) or not.
fn check_extra<T>(
    argument: &str,
    has: bool,
    shape: &[usize],
    weight: Option<ArrayView2<T>>,
) -> Result<()> {
    match (has, weight) {
        (true, Some(w)) => check_shape(argument, shape, w.shape()),
        (false, None) => Ok(()),
        (true, None) => Err(missing(argument, "layer_norm is true")),
        (false, Some(_)) => Err(unexpected(argument, "layer_norm is false")),
    }
}

/// `argument` is `None` where `reason` needs an array.
fn missing(argument: &str, reason: &str) -> Error {
    Error::Value {
        argument: argument.into(),
        expected: format!("an array since {reason}"),
        received: "None".into(),
    }
}

/// `argument` is an array where `reason` needs `None`.
fn unexpected(argument: &str, reason: &str) -> Error {
    Error::Value {
        argument: argument.into(),
        expected: format!("None since {reason}"),
        received: "an array".into(),
    }
}

/// Splits a row of `gates · units` values into its gate blocks.
#[inline(always)]
fn blocks<T, const G: usize>(row: &[T]) -> [&[T]; G] {
    let u = row.len() / G;
    std::array::from_fn(|g| &row[g * u..(g + 1) * u])
}

/// Splits a mutable row of `gates · units` values into its gate blocks.
#[inline(always)]
fn blocks_mut<T, const G: usize>(row: &mut [T]) -> [&mut [T]; G] {
    let u = row.len() / G;
    let mut rest = row;
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(u);
        rest = tail;
        head
    })
}

/// The four gate blocks of a row's saved `pre` and of its gradient `dpre`, each cut to `n`
/// units. Cut one by one: through `array::map` the lengths reach the optimizer only as copies it
/// does not see through, and the backward loops kept their bounds checks and left up to 16 units
/// per row to a scalar loop instead of vectorizing to the end.
#[inline(always)]
fn lstm_grad_blocks<'a, T>(
    pre: &'a [T],
    dpre: &'a mut [T],
    n: usize,
) -> ([&'a [T]; 4], [&'a mut [T]; 4]) {
    let [zi, zf, zc, zo] = blocks::<T, 4>(pre);
    let [di, df, dg, d_o] = blocks_mut::<T, 4>(dpre);
    (
        [&zi[..n], &zf[..n], &zc[..n], &zo[..n]],
        [&mut di[..n], &mut df[..n], &mut dg[..n], &mut d_o[..n]],
    )
}

/// SimpleRNN forward: `pre` holds the summed pre-activation; writes `h`.
#[inline(always)]
pub fn simple_forward<T: Float, P: Pointwise<T>>(p: &P, pre: &[T], h: &mut [T]) {
    for (h, &a) in h.iter_mut().zip(pre) {
        *h = p.act(a);
    }
}

/// SimpleRNN backward: `dh` (gradient of `h`) to `dpre`.
#[inline(always)]
pub fn simple_backward<T: Float, P: Pointwise<T>>(p: &P, pre: &[T], dh: &[T], dpre: &mut [T]) {
    for ((d, &a), &g) in dpre.iter_mut().zip(pre).zip(dh) {
        *d = g * p.act_d(a, p.act(a));
    }
}

/// LSTM forward: `pre` holds `x·W + h₋₁·U + b` for gates i, f, c, o; writes `h` and `c`. With
/// `KEEP_GATES` (for the default tanh/sigmoid pair) `pre` leaves as the gate values `i, f, g, o`:
/// their derivatives follow from the values alone, so the backward pass needs no activation
/// again.
#[inline(always)]
pub fn lstm_forward<T: Float, P: Pointwise<T>, const KEEP_GATES: bool>(
    p: &P,
    pre: &mut [T],
    c_prev: &[T],
    h: &mut [T],
    c: &mut [T],
) {
    // Every slice cut to one length, so the loop has no bounds checks and vectorizes.
    let n = h.len();
    let [zi, zf, zc, zo] = blocks_mut::<T, 4>(pre).map(|z| &mut z[..n]);
    let (c_prev, c) = (&c_prev[..n], &mut c[..n]);
    for j in 0..n {
        let (i, f, g, o) = (p.ract(zi[j]), p.ract(zf[j]), p.act(zc[j]), p.ract(zo[j]));
        let cj = f * c_prev[j] + i * g;
        c[j] = cj;
        h[j] = o * p.act(cj);
        if KEEP_GATES {
            (zi[j], zf[j], zc[j], zo[j]) = (i, f, g, o);
        }
    }
}

/// The LSTM gates `[i, f, g, o]` and their derivatives from what the forward pass left in
/// `pre` for unit `j`: the gate values (`FROM_GATES`, tanh/sigmoid only: tanh' = 1 - y²,
/// sigmoid' = y (1 - y)) or the pre-activations.
#[inline(always)]
fn lstm_gates<T: Float, P: Pointwise<T>, const FROM_GATES: bool>(
    p: &P,
    [zi, zf, zc, zo]: [T; 4],
) -> ([T; 4], [T; 4]) {
    if FROM_GATES {
        let one = T::one();
        let sigmoid_d = |y: T| y * (one - y);
        (
            [zi, zf, zc, zo],
            [sigmoid_d(zi), sigmoid_d(zf), one - zc * zc, sigmoid_d(zo)],
        )
    } else {
        let (i, f, g, o) = (p.ract(zi), p.ract(zf), p.act(zc), p.ract(zo));
        let derivatives = [
            p.ract_d(zi, i),
            p.ract_d(zf, f),
            p.act_d(zc, g),
            p.ract_d(zo, o),
        ];
        ([i, f, g, o], derivatives)
    }
}

/// LSTM backward for one row. `dh` is the gradient of `h`; `dc` enters as the gradient of `c`
/// from later steps and leaves as the gradient of `c₋₁`. Writes `dpre` (all four gates). `pre`
/// holds what [`lstm_forward`] left with the same `FROM_GATES` as its `KEEP_GATES`.
#[inline(always)]
pub fn lstm_backward<T: Float, P: Pointwise<T>, const FROM_GATES: bool>(
    p: &P,
    pre: &[T],
    c_prev: &[T],
    c: &[T],
    dh: &[T],
    dc: &mut [T],
    dpre: &mut [T],
) {
    let n = dh.len();
    let ([zi, zf, zc, zo], [di, df, dg, d_o]) = lstm_grad_blocks(pre, dpre, n);
    let (c_prev, c, dc) = (&c_prev[..n], &c[..n], &mut dc[..n]);
    for j in 0..n {
        let ([i, f, g, o], [d_i, d_f, d_g, d_o_]) =
            lstm_gates::<T, P, FROM_GATES>(p, [zi[j], zf[j], zc[j], zo[j]]);
        let ac = p.act(c[j]);
        let dcj = dc[j] + dh[j] * o * p.act_d(c[j], ac);
        d_o[j] = dh[j] * ac * d_o_;
        di[j] = dcj * g * d_i;
        df[j] = dcj * c_prev[j] * d_f;
        dg[j] = dcj * i * d_g;
        dc[j] = dcj * f;
    }
}

/// LSTM with peepholes, forward: as [`lstm_forward`] with `peephole = [p_i, p_f, p_o]` adding
/// `p_i ⊙ c₋₁` to the input gate's pre-activation, `p_f ⊙ c₋₁` to the forget gate's and
/// `p_o ⊙ c` (the new cell state) to the output gate's. `pre` leaves as the full
/// pre-activations, or the gate values with `KEEP_GATES`.
#[inline(always)]
pub fn lstm_peephole_forward<T: Float, P: Pointwise<T>, const KEEP_GATES: bool>(
    p: &P,
    peephole: [&[T]; 3],
    pre: &mut [T],
    c_prev: &[T],
    h: &mut [T],
    c: &mut [T],
) {
    let n = h.len();
    let [zi, zf, zc, zo] = blocks_mut::<T, 4>(pre).map(|z| &mut z[..n]);
    let [pi, pf, po] = peephole.map(|w| &w[..n]);
    let (c_prev, c) = (&c_prev[..n], &mut c[..n]);
    for j in 0..n {
        zi[j] += pi[j] * c_prev[j];
        zf[j] += pf[j] * c_prev[j];
        let (i, f, g) = (p.ract(zi[j]), p.ract(zf[j]), p.act(zc[j]));
        let cj = f * c_prev[j] + i * g;
        zo[j] += po[j] * cj;
        let o = p.ract(zo[j]);
        c[j] = cj;
        h[j] = o * p.act(cj);
        if KEEP_GATES {
            (zi[j], zf[j], zc[j], zo[j]) = (i, f, g, o);
        }
    }
}

/// LSTM with peepholes, backward for one row: as [`lstm_backward`], with the peepholes' paths
/// from the output gate into `dc` and from the input and forget gates into `dc₋₁`. The
/// peephole weights' gradients are sums over all steps, taken after the loop from `dpre` and
/// the saved cell states.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one slice per operand of the row's step math
pub fn lstm_peephole_backward<T: Float, P: Pointwise<T>, const FROM_GATES: bool>(
    p: &P,
    peephole: [&[T]; 3],
    pre: &[T],
    c_prev: &[T],
    c: &[T],
    dh: &[T],
    dc: &mut [T],
    dpre: &mut [T],
) {
    let n = dh.len();
    let ([zi, zf, zc, zo], [di, df, dg, d_o]) = lstm_grad_blocks(pre, dpre, n);
    let [pi, pf, po] = peephole;
    let (pi, pf, po) = (&pi[..n], &pf[..n], &po[..n]);
    let (c_prev, c, dc) = (&c_prev[..n], &c[..n], &mut dc[..n]);
    for j in 0..n {
        let ([i, f, g, o], [d_i, d_f, d_g, d_o_]) =
            lstm_gates::<T, P, FROM_GATES>(p, [zi[j], zf[j], zc[j], zo[j]]);
        let ac = p.act(c[j]);
        let doj = dh[j] * ac * d_o_;
        let dcj = dc[j] + dh[j] * o * p.act_d(c[j], ac) + doj * po[j];
        d_o[j] = doj;
        di[j] = dcj * g * d_i;
        df[j] = dcj * c_prev[j] * d_f;
        dg[j] = dcj * i * d_g;
        dc[j] = dcj * f + di[j] * pi[j] + df[j] * pf[j];
    }
}

/// GRU (`reset_after`) forward. `pre` enters as the input projection `x·W + b_in` and leaves as
/// the pre-activations `[x_z + r_z, x_r + r_r, x_h + r ⊙ r_h]`, or with `KEEP_GATES` as the gate
/// values `[z, r, h̃]` (for the default tanh/sigmoid pair: the backward pass then needs no
/// activation again); `rec` is `h₋₁·U + b_rec`. Writes `h` and keeps `r_h` (the recurrent
/// h-gate term) in `rec_h`.
#[inline(always)]
pub fn gru_after_forward<T: Float, P: Pointwise<T>, const KEEP_GATES: bool>(
    p: &P,
    pre: &mut [T],
    rec: &[T],
    h_prev: &[T],
    h: &mut [T],
    rec_h: &mut [T],
) {
    let [rz, rr, rh] = blocks::<T, 3>(rec);
    let [pz, pr, ph] = blocks_mut::<T, 3>(pre);
    for j in 0..h.len() {
        let r = p.ract(pr[j] + rr[j]);
        let xh = ph[j] + r * rh[j];
        let z = p.ract(pz[j] + rz[j]);
        let hh = p.act(xh);
        h[j] = z * h_prev[j] + (T::one() - z) * hh;
        rec_h[j] = rh[j];
        (pz[j], pr[j], ph[j]) = if KEEP_GATES {
            (z, r, hh)
        } else {
            (pz[j] + rz[j], pr[j] + rr[j], xh)
        };
    }
}

/// GRU (`reset_after`) backward. From `dh`, writes `dpre` (the input-side gradients), `drec_h`
/// (the gradient of the recurrent h-gate term, `dpre_h ⊙ r`) and `dh_prev` (the direct path
/// through the blend, `dh ⊙ z`). `pre` holds what [`gru_after_forward`] left with the same
/// `FROM_GATES` as its `KEEP_GATES`.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one slice per operand of the row's step math
pub fn gru_after_backward<T: Float, P: Pointwise<T>, const FROM_GATES: bool>(
    p: &P,
    pre: &[T],
    rec_h: &[T],
    h_prev: &[T],
    dh: &[T],
    dpre: &mut [T],
    drec_h: &mut [T],
    dh_prev: &mut [T],
) {
    let one = T::one();
    let [pz, pr, ph] = blocks::<T, 3>(pre);
    let [dz, dr, dhh] = blocks_mut::<T, 3>(dpre);
    for j in 0..dh.len() {
        // The gates and their derivatives (tanh' = 1 - y², sigmoid' = y (1 - y) from the values).
        let (z, r, hh, d_z, d_r, d_hh) = if FROM_GATES {
            let (z, r, hh) = (pz[j], pr[j], ph[j]);
            (z, r, hh, z * (one - z), r * (one - r), one - hh * hh)
        } else {
            let (z, r, hh) = (p.ract(pz[j]), p.ract(pr[j]), p.act(ph[j]));
            let derivatives = (p.ract_d(pz[j], z), p.ract_d(pr[j], r), p.act_d(ph[j], hh));
            (z, r, hh, derivatives.0, derivatives.1, derivatives.2)
        };
        let da = dh[j] * (one - z) * d_hh;
        dhh[j] = da;
        drec_h[j] = da * r;
        dr[j] = da * rec_h[j] * d_r;
        dz[j] = dh[j] * (h_prev[j] - hh) * d_z;
        dh_prev[j] = dh[j] * z;
    }
}

/// GRU (reset before the product) forward, first half: adds `rec` (the z and r products) into
/// `pre` and writes `q = r ⊙ h₋₁ ⊙ m_h`, the input of the h-gate product.
#[inline(always)]
pub fn gru_before_gates<T: Float, P: Pointwise<T>>(
    p: &P,
    pre: &mut [T],
    rec_zr: &[T],
    h_prev: &[T],
    mask_h: Option<&[T]>,
    q: &mut [T],
) {
    let u = q.len();
    for (p, &r) in pre[..2 * u].iter_mut().zip(rec_zr) {
        *p += r;
    }
    for j in 0..u {
        let r = p.ract(pre[u + j]);
        q[j] = r * h_prev[j] * mask_h.map_or(T::one(), |m| m[j]);
    }
}

/// GRU (reset before the product) forward, second half: adds the h-gate product `q·U_h` into
/// `pre` and writes `h`.
#[inline(always)]
pub fn gru_before_output<T: Float, P: Pointwise<T>>(
    p: &P,
    pre: &mut [T],
    rec_h: &[T],
    h_prev: &[T],
    h: &mut [T],
) {
    let u = h.len();
    for j in 0..u {
        pre[2 * u + j] += rec_h[j];
        let z = p.ract(pre[j]);
        h[j] = z * h_prev[j] + (T::one() - z) * p.act(pre[2 * u + j]);
    }
}

/// GRU (reset before the product) backward, first half: the z and h-gate gradients into `dpre`
/// and the direct path `dh ⊙ z` into `dh_prev`. The r gradient needs `dq = dpre_h · U_hᵀ` first.
#[inline(always)]
pub fn gru_before_backward_gates<T: Float, P: Pointwise<T>>(
    p: &P,
    pre: &[T],
    h_prev: &[T],
    dh: &[T],
    dpre: &mut [T],
    dh_prev: &mut [T],
) {
    let u = dh.len();
    for j in 0..u {
        let z = p.ract(pre[j]);
        let hh = p.act(pre[2 * u + j]);
        dpre[2 * u + j] = dh[j] * (T::one() - z) * p.act_d(pre[2 * u + j], hh);
        dpre[j] = dh[j] * (h_prev[j] - hh) * p.ract_d(pre[j], z);
        dh_prev[j] = dh[j] * z;
    }
}

/// GRU (reset before the product) backward, second half: from `dq`, the r-gate gradient into
/// `dpre`, the path through `q` into `dh_prev`, and `q` itself (for the h-gate weight gradient).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one slice per operand of the row's step math
pub fn gru_before_backward_reset<T: Float, P: Pointwise<T>>(
    p: &P,
    pre: &[T],
    h_prev: &[T],
    mask_h: Option<&[T]>,
    dq: &[T],
    dpre: &mut [T],
    dh_prev: &mut [T],
    q: &mut [T],
) {
    let u = dq.len();
    for j in 0..u {
        let m = mask_h.map_or(T::one(), |m| m[j]);
        let r = p.ract(pre[u + j]);
        q[j] = r * h_prev[j] * m;
        dpre[u + j] = dq[j] * h_prev[j] * m * p.ract_d(pre[u + j], r);
        dh_prev[j] += dq[j] * r * m;
    }
}

/// Partial sums kept apart by the row reductions of layer normalisation: four vectors' worth of
/// f32 (eight of f64) in flight, so that their loops vectorize without one long chain of
/// dependent adds. They are added in a fixed order, so the result does not depend on the CPU.
const LANES: usize = 64;

/// `Σ f(a_j, b_j)` over two rows of one length: [`LANES`] interleaved partial sums added
/// pairwise in a fixed tree, then the tail.
#[inline(always)]
fn lane_sum<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let n = a.len().min(b.len());
    let (a_blocks, a_rest) = a[..n].as_chunks::<LANES>();
    let (b_blocks, b_rest) = b[..n].as_chunks::<LANES>();
    let mut partial = [T::zero(); LANES];
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for l in 0..LANES {
            partial[l] += f(x[l], y[l]);
        }
    }
    // Halves added with constant indices, so each level is a few vector adds.
    let p: [T; 32] = std::array::from_fn(|l| partial[l] + partial[l + 32]);
    let p: [T; 16] = std::array::from_fn(|l| p[l] + p[l + 16]);
    let p: [T; 8] = std::array::from_fn(|l| p[l] + p[l + 8]);
    let p: [T; 4] = std::array::from_fn(|l| p[l] + p[l + 4]);
    let total = (p[0] + p[2]) + (p[1] + p[3]);
    (a_rest.iter().zip(b_rest)).fold(total, |s, (&x, &y)| s + f(x, y))
}

/// A row length as a float.
#[inline(always)]
fn count<T: Float>(n: usize) -> T {
    T::from_usize(n.max(1)).expect("row lengths convert to floats")
}

/// The mean and the reciprocal standard deviation `1 / √(var + ε)` of a row (the variance over
/// the row, not its unbiased estimate), as layer normalisation uses them.
#[inline(always)]
pub fn moments<T: Float>(x: &[T]) -> (T, T) {
    let n = count::<T>(x.len());
    let mean = lane_sum(x, x, |v, _| v) / n;
    let var = lane_sum(x, x, |v, _| (v - mean) * (v - mean)) / n;
    (mean, T::one() / (var + T::lit(LAYER_NORM_EPSILON)).sqrt())
}

/// Layer normalisation's backward pass for one row, in place: `d` enters as the gradient `dy`
/// of `y = γ ⊙ x̂ + β` (`x̂ = (x - mean) ⊙ rstd`, `x` = `raw`, `(mean, rstd)` its [`moments`] as
/// the forward pass computed them) and leaves as that of `x`,
/// `rstd ⊙ (g - mean(g) - x̂ ⊙ mean(g ⊙ x̂))` with `g = γ ⊙ dy`; adds the row's share of the
/// gain's gradient, `dy ⊙ x̂`, into `d_gain`.
#[inline(always)]
pub fn layer_norm_backward<T: Float>(
    gain: &[T],
    raw: &[T],
    (mean, rstd): (T, T),
    d: &mut [T],
    d_gain: &mut [T],
) {
    let n = d.len();
    let (gain, raw, d_gain) = (&gain[..n], &raw[..n], &mut d_gain[..n]);
    for j in 0..n {
        d_gain[j] += d[j] * ((raw[j] - mean) * rstd);
        d[j] *= gain[j];
    }
    finish_layer_norm_backward(raw, mean, rstd, d);
}

/// The end of layer normalisation's backward pass over a row of `x` (`raw`, whose moments are
/// given), `dx` entering as `g = γ ⊙ dy` and leaving as the gradient of `x`.
#[inline(always)]
fn finish_layer_norm_backward<T: Float>(raw: &[T], mean: T, rstd: T, dx: &mut [T]) {
    let n = dx.len();
    let raw = &raw[..n];
    let sum = lane_sum(dx, dx, |g, _| g) / count(n);
    let dot = lane_sum(dx, raw, |g, x| g * (x - mean)) * rstd / count(n);
    for j in 0..n {
        dx[j] = rstd * (dx[j] - sum - (raw[j] - mean) * rstd * dot);
    }
}

/// Layer-normalised LSTM forward: as [`lstm_forward`], then `h = o ⊙ act(γ_c ⊙ LN(c) + β_c)`
/// with `cell_norm = [γ_c, β_c]`; `c` leaves unnormalised.
#[inline(always)]
pub fn lstm_norm_forward<T: Float, P: Pointwise<T>, const KEEP_GATES: bool>(
    p: &P,
    cell_norm: [&[T]; 2],
    pre: &mut [T],
    c_prev: &[T],
    h: &mut [T],
    c: &mut [T],
) {
    let n = h.len();
    let [zi, zf, zc, zo] = blocks_mut::<T, 4>(pre).map(|z| &mut z[..n]);
    let [gain, shift] = cell_norm.map(|w| &w[..n]);
    let (c_prev, c) = (&c_prev[..n], &mut c[..n]);
    for j in 0..n {
        let (i, f, g) = (p.ract(zi[j]), p.ract(zf[j]), p.act(zc[j]));
        c[j] = f * c_prev[j] + i * g;
        if KEEP_GATES {
            (zi[j], zf[j], zc[j], zo[j]) = (i, f, g, p.ract(zo[j]));
        }
    }
    let (mean, rstd) = moments(c);
    for j in 0..n {
        let o = if KEEP_GATES { zo[j] } else { p.ract(zo[j]) };
        h[j] = o * p.act(gain[j] * ((c[j] - mean) * rstd) + shift[j]);
    }
}

/// Layer-normalised LSTM backward for one row: as [`lstm_backward`], with the path from `h`
/// into `c` through the cell-state normalisation. Adds this row's share of the gradients of
/// `[γ_c, β_c]` into `norm_grads` (`2 · units`: `Σ dn ⊙ LN(c)`, then `Σ dn`, `dn` the gradient
/// of `γ_c ⊙ LN(c) + β_c`).
#[inline(always)]
#[allow(clippy::too_many_arguments)] // one slice per operand of the row's step math
pub fn lstm_norm_backward<T: Float, P: Pointwise<T>, const FROM_GATES: bool>(
    p: &P,
    cell_norm: [&[T]; 2],
    pre: &[T],
    c_prev: &[T],
    c: &[T],
    dh: &[T],
    dc: &mut [T],
    dpre: &mut [T],
    norm_grads: &mut [T],
) {
    let n = dh.len();
    let ([zi, zf, zc, zo], [di, df, dg, d_o]) = lstm_grad_blocks(pre, dpre, n);
    let [gain, shift] = cell_norm;
    let (gain, shift) = (&gain[..n], &shift[..n]);
    let (d_gain, d_shift) = norm_grads.split_at_mut(n);
    let (d_gain, d_shift) = (&mut d_gain[..n], &mut d_shift[..n]);
    let (c_prev, c, dc) = (&c_prev[..n], &c[..n], &mut dc[..n]);
    let (mean, rstd) = moments(c);
    // First the output gate and `γ_c ⊙ dn` (kept in `dg`, where the cell-state gradient's
    // normalisation part is then finished, until the last loop overwrites it).
    for j in 0..n {
        let ([_, _, _, o], [_, _, _, d_o_]) =
            lstm_gates::<T, P, FROM_GATES>(p, [zi[j], zf[j], zc[j], zo[j]]);
        let xhat = (c[j] - mean) * rstd;
        let norm = gain[j] * xhat + shift[j];
        let a = p.act(norm);
        let dn = dh[j] * o * p.act_d(norm, a);
        d_o[j] = dh[j] * a * d_o_;
        dg[j] = gain[j] * dn;
        d_gain[j] += dn * xhat;
        d_shift[j] += dn;
    }
    finish_layer_norm_backward(c, mean, rstd, dg);
    for j in 0..n {
        let ([i, f, g, _], [d_i, d_f, d_g, _]) =
            lstm_gates::<T, P, FROM_GATES>(p, [zi[j], zf[j], zc[j], zo[j]]);
        let dcj = dc[j] + dg[j];
        di[j] = dcj * g * d_i;
        df[j] = dcj * c_prev[j] * d_f;
        dg[j] = dcj * i * d_g;
        dc[j] = dcj * f;
    }
}
