//! Central-difference gradient checks in f64 for every cell (Keras's, IndRNN, LSTM with
//! peepholes and/or projection, layer-normalised LSTM and GRU) and option of the sequence loop.

mod common;

use common::{cell_spec, Extra, OwnedWeights, Rng, CELLS};
use ndarray::{Array2, Array3, ArrayD};
use rnnkit::{
    sequence, Cancel, CellKind, CellSpec, OutputGrad, SequenceInput, SequenceOptions, Zoneout,
};

const B: usize = 3;
const T: usize = 5;
const F: usize = 4;
const H: usize = 3;

/// One configuration of the options a gradient check exercises.
#[derive(Clone)]
struct Case {
    spec: CellSpec,
    options: SequenceOptions,
    with_states: bool,
    mask: Option<Array2<bool>>,
    input_dropout: Option<Array3<f64>>,
    recurrent_dropout: Option<Array3<f64>>,
    /// Per state, `(batch, time, state units)` zoneout weights.
    zoneout: Option<Vec<Array3<f64>>>,
    last_only: bool,
}

/// The differentiable inputs, flattened so each can be perturbed in turn.
#[derive(Clone)]
struct Params {
    x: Array3<f64>,
    weights: OwnedWeights,
    states: Vec<Array2<f64>>,
}

impl Clone for OwnedWeights {
    fn clone(&self) -> Self {
        Self {
            kernel: self.kernel.clone(),
            recurrent_kernel: self.recurrent_kernel.clone(),
            bias: self.bias.clone(),
            peephole: self.peephole.clone(),
            projection: self.projection.clone(),
            layer_norm: self.layer_norm.clone(),
            cell_norm: self.cell_norm.clone(),
        }
    }
}

impl Params {
    fn arrays_mut(&mut self) -> Vec<(&'static str, ndarray::ArrayViewMutD<'_, f64>)> {
        let mut out = vec![
            ("x", self.x.view_mut().into_dyn()),
            ("kernel", self.weights.kernel.view_mut().into_dyn()),
            (
                "recurrent_kernel",
                self.weights.recurrent_kernel.view_mut().into_dyn(),
            ),
        ];
        if let Some(b) = self.weights.bias.as_mut() {
            out.push(("bias", b.view_mut().into_dyn()));
        }
        if let Some(w) = self.weights.peephole.as_mut() {
            out.push(("peephole", w.view_mut().into_dyn()));
        }
        if let Some(w) = self.weights.projection.as_mut() {
            out.push(("projection", w.view_mut().into_dyn()));
        }
        if let Some(w) = self.weights.layer_norm.as_mut() {
            out.push(("layer_norm", w.view_mut().into_dyn()));
        }
        if let Some(w) = self.weights.cell_norm.as_mut() {
            out.push(("cell_norm", w.view_mut().into_dyn()));
        }
        for s in self.states.iter_mut() {
            out.push(("initial_state", s.view_mut().into_dyn()));
        }
        out
    }
}

/// `loss = Σ outputs ⊙ r_out + Σ final_states ⊙ r_states`, the random projections making every
/// gradient entry distinct.
fn loss(
    case: &Case,
    p: &Params,
    r_out: &Array3<f64>,
    r_last: &Array2<f64>,
    r_states: &[Array2<f64>],
) -> f64 {
    let states: Vec<_> = p.states.iter().map(|s| s.view()).collect();
    let input = SequenceInput {
        x: p.x.view(),
        initial_states: case.with_states.then_some(states),
        mask: case.mask.as_ref().map(|m| m.view()),
        input_dropout: case.input_dropout.as_ref().map(|m| m.view()),
        recurrent_dropout: case.recurrent_dropout.as_ref().map(|m| m.view()),
        zoneout: (case.zoneout.as_ref())
            .map(|z| Zoneout::Weights(z.iter().map(|m| m.view()).collect())),
        cancel: Cancel::default(),
    };
    let out = sequence::forward(&case.spec, &p.weights.view(), &input, case.options).unwrap();
    let y = if case.last_only {
        (&out.outputs.slice(ndarray::s![.., T - 1, ..]) * r_last).sum()
    } else {
        (&out.outputs * r_out).sum()
    };
    y + out
        .final_states
        .iter()
        .zip(r_states)
        .map(|(s, r)| (s * r).sum())
        .sum::<f64>()
}

fn check(case: Case, seed: u64) {
    let mut rng = Rng::new(seed);
    let p = Params {
        x: rng.array((B, T, F), 1.0),
        weights: OwnedWeights::random(&mut rng, &case.spec, F, 0.6),
        states: (0..case.spec.state_count())
            .map(|i| rng.array((B, case.spec.state_units(i)), 0.5))
            .collect(),
    };
    let out = case.spec.output_units();
    let r_out = rng.array((B, T, out), 1.0);
    let r_last = rng.array((B, out), 1.0);
    let r_states: Vec<_> = (0..case.spec.state_count())
        .map(|i| rng.array((B, case.spec.state_units(i)), 1.0))
        .collect();

    let states: Vec<_> = p.states.iter().map(|s| s.view()).collect();
    let input = SequenceInput {
        x: p.x.view(),
        initial_states: case.with_states.then_some(states),
        mask: case.mask.as_ref().map(|m| m.view()),
        input_dropout: case.input_dropout.as_ref().map(|m| m.view()),
        recurrent_dropout: case.recurrent_dropout.as_ref().map(|m| m.view()),
        zoneout: (case.zoneout.as_ref())
            .map(|z| Zoneout::Weights(z.iter().map(|m| m.view()).collect())),
        cancel: Cancel::default(),
    };
    let fwd = sequence::forward(&case.spec, &p.weights.view(), &input, case.options).unwrap();
    let d_out = if case.last_only {
        OutputGrad::Last(r_last.view())
    } else {
        OutputGrad::Sequence(r_out.view())
    };
    let d_states: Vec<_> = r_states.iter().map(|r| Some(r.view())).collect();
    let g = sequence::backward(&fwd.saved, d_out, &d_states, true, &Cancel::default()).unwrap();
    let mut analytic: Vec<ArrayD<f64>> = vec![
        g.input.expect("asked for").into_dyn(),
        g.kernel.into_dyn(),
        g.recurrent_kernel.into_dyn(),
    ];
    analytic.extend(g.bias.map(ndarray::ArrayBase::into_dyn));
    analytic.extend(g.peephole.map(ndarray::ArrayBase::into_dyn));
    analytic.extend(g.projection.map(ndarray::ArrayBase::into_dyn));
    analytic.extend(g.layer_norm.map(ndarray::ArrayBase::into_dyn));
    analytic.extend(g.cell_norm.map(ndarray::ArrayBase::into_dyn));
    if case.with_states {
        analytic.extend(
            g.initial_states
                .into_iter()
                .map(ndarray::ArrayBase::into_dyn),
        );
    }

    let step = 1e-6;
    let mut work = p.clone();
    let n_arrays = work.arrays_mut().len()
        - if case.with_states {
            0
        } else {
            case.spec.state_count()
        };
    #[allow(clippy::needless_range_loop)] // `work` is mutated inside, so no iterator over it
    for a in 0..n_arrays {
        let len = work.arrays_mut()[a].1.len();
        let mut numeric = Vec::with_capacity(len);
        for i in 0..len {
            let orig = work.arrays_mut()[a].1.as_slice_mut().unwrap()[i];
            work.arrays_mut()[a].1.as_slice_mut().unwrap()[i] = orig + step;
            let up = loss(&case, &work, &r_out, &r_last, &r_states);
            work.arrays_mut()[a].1.as_slice_mut().unwrap()[i] = orig - step;
            let down = loss(&case, &work, &r_out, &r_last, &r_states);
            work.arrays_mut()[a].1.as_slice_mut().unwrap()[i] = orig;
            numeric.push((up - down) / (2.0 * step));
        }
        let name = work.arrays_mut()[a].0;
        let ana = analytic[a].as_slice().unwrap();
        let diff: f64 = numeric
            .iter()
            .zip(ana)
            .map(|(n, a)| (n - a).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm: f64 = numeric.iter().map(|n| n * n).sum::<f64>().sqrt();
        let rel = diff / norm.max(1e-12);
        assert!(
            rel <= 1e-5,
            "{:?} {:?}: d{name} relative error {rel:e}\nnumeric  {numeric:?}\nanalytic {ana:?}",
            case.spec.kind,
            case.options
        );
        assert!(
            norm > 0.0,
            "{:?} d{name} is identically zero: the check would prove nothing",
            case.spec
        );
    }
}

fn base(cell: (CellKind, Extra)) -> Case {
    Case {
        spec: cell_spec(cell, H, "tanh", "sigmoid", true),
        options: SequenceOptions::default(),
        with_states: true,
        mask: None,
        input_dropout: None,
        recurrent_dropout: None,
        zoneout: None,
        last_only: false,
    }
}

#[test]
fn plain_with_initial_states() {
    for (i, kind) in CELLS.into_iter().enumerate() {
        check(base(kind), 10 + i as u64);
    }
}

#[test]
fn zero_initial_states_last_output_only() {
    for (i, kind) in CELLS.into_iter().enumerate() {
        check(
            Case {
                with_states: false,
                last_only: true,
                ..base(kind)
            },
            20 + i as u64,
        );
    }
}

#[test]
fn mask_of_any_pattern_carrying_outputs() {
    // Row 0 has masked steps in the middle and at both ends, row 2 is fully masked.
    let mask = ndarray::array![
        [false, true, false, true, false],
        [true, true, false, false, true],
        [false, false, false, false, false]
    ];
    for (i, kind) in CELLS.into_iter().enumerate() {
        check(
            Case {
                mask: Some(mask.clone()),
                ..base(kind)
            },
            30 + i as u64,
        );
        let last = Case {
            mask: Some(mask.clone()),
            last_only: true,
            ..base(kind)
        };
        check(last, 35 + i as u64);
    }
}

#[test]
fn mask_with_zero_output_and_go_backwards() {
    let mut rng = Rng::new(7);
    for (i, kind) in CELLS.into_iter().enumerate() {
        let options = SequenceOptions {
            go_backwards: true,
            zero_output_for_mask: true,
            ..Default::default()
        };
        check(
            Case {
                options,
                mask: Some(rng.mask(B, T, 0.6)),
                ..base(kind)
            },
            40 + i as u64,
        );
        let options = SequenceOptions {
            go_backwards: true,
            zero_output_for_mask: false,
            ..Default::default()
        };
        check(
            Case {
                options,
                last_only: true,
                ..base(kind)
            },
            45 + i as u64,
        );
    }
}

#[test]
fn one_input_dropout_mask_shared_by_the_gates() {
    // Keras's default: one input mask for every gate (the core then runs each product once).
    let mut rng = Rng::new(9);
    for (i, kind) in CELLS.into_iter().enumerate() {
        let s = cell_spec(kind, H, "tanh", "sigmoid", true);
        let (g, out) = (s.gates(), s.output_units());
        let one = rng.dropout(1, B, F, 0.3);
        let case = Case {
            input_dropout: Some(one.broadcast((g, B, F)).unwrap().to_owned()),
            recurrent_dropout: Some(rng.dropout(g, B, out, 0.4)),
            ..base(kind)
        };
        check(case, 60 + i as u64);
    }
}

#[test]
fn dropout_masks_per_gate() {
    let mut rng = Rng::new(8);
    for (i, kind) in CELLS.into_iter().enumerate() {
        let s = cell_spec(kind, H, "tanh", "sigmoid", true);
        let (g, out) = (s.gates(), s.output_units());
        let case = Case {
            input_dropout: Some(rng.dropout(g, B, F, 0.3)),
            recurrent_dropout: Some(rng.dropout(g, B, out, 0.4)),
            mask: Some(rng.mask(B, T, 0.7)),
            ..base(kind)
        };
        check(case, 50 + i as u64);
    }
}

#[test]
fn no_bias_and_other_activations() {
    let pairs = [
        ("relu", "hard_sigmoid"),
        ("gelu", "softsign"),
        ("elu", "silu"),
        ("selu", "tanh"),
        ("mish", "softplus"),
    ];
    for (i, kind) in CELLS.into_iter().enumerate() {
        for (j, (act, ract)) in pairs.iter().enumerate() {
            let use_bias = j % 2 == 0;
            let case = Case {
                spec: cell_spec(kind, H, act, ract, use_bias),
                ..base(kind)
            };
            check(case, 160 + (i * 10 + j) as u64);
        }
    }
}

/// Per state of `spec`, `(B, T, state units)` zoneout weights: 0/1 masks keeping about `rate`
/// of the previous values, or the constant `rate` (inference's expectation).
fn zoneout(rng: &mut Rng, spec: &CellSpec, rate: f64, masks: bool) -> Vec<Array3<f64>> {
    (0..spec.state_count())
        .map(|i| {
            Array3::from_shape_simple_fn((B, T, spec.state_units(i)), || match masks {
                true => f64::from(u8::from(rng.uniform(0.0, 1.0) < rate)),
                false => rate,
            })
        })
        .collect()
}

#[test]
fn zoneout_masks_with_masking_dropout_and_go_backwards() {
    let mut rng = Rng::new(11);
    for (i, kind) in CELLS.into_iter().enumerate() {
        let s = cell_spec(kind, H, "tanh", "sigmoid", true);
        let case = Case {
            zoneout: Some(zoneout(&mut rng, &s, 0.4, true)),
            mask: Some(rng.mask(B, T, 0.7)),
            recurrent_dropout: Some(rng.dropout(s.gates(), B, s.output_units(), 0.3)),
            options: SequenceOptions {
                go_backwards: i % 2 == 0,
                ..Default::default()
            },
            ..base(kind)
        };
        check(case, 200 + i as u64);
    }
}

#[test]
fn zoneout_expectation_last_output_only() {
    let mut rng = Rng::new(12);
    for (i, kind) in CELLS.into_iter().enumerate() {
        let s = cell_spec(kind, H, "relu", "hard_sigmoid", false);
        let case = Case {
            spec: s,
            zoneout: Some(zoneout(&mut rng, &s, 0.3, false)),
            last_only: true,
            ..base(kind)
        };
        check(case, 220 + i as u64);
    }
}
