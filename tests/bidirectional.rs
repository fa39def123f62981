//! Bidirectional in f64: the merge against two independent sequence passes, central-difference
//! gradients through every merge mode, and the errors of the merge's backward.

mod common;

use common::{mixed_mask, spec, OwnedWeights, Rng};
use ndarray::{concatenate, s, Array2, Array3, ArrayD, Axis, IxDyn};
use rnnkit::bidirectional::{self, BidirectionalForward, BidirectionalGradients};
use rnnkit::{
    sequence, Cancel, CellKind, CellSpec, Direction, MergeMode, SequenceInput, SequenceOptions,
};

const B: usize = 3;
const T: usize = 4;
const F: usize = 3;
const H: usize = 2;

const CELLS: [CellKind; 4] = [
    CellKind::Lstm,
    CellKind::Gru { reset_after: true },
    CellKind::Gru { reset_after: false },
    CellKind::SimpleRnn,
];

const MODES: [MergeMode; 5] = [
    MergeMode::Concat,
    MergeMode::Sum,
    MergeMode::Mul,
    MergeMode::Ave,
    MergeMode::None,
];

/// One direction's cell, weights and initial states.
#[derive(Clone)]
struct Side {
    spec: CellSpec,
    weights: OwnedWeights,
    states: Vec<Array2<f64>>,
    options: SequenceOptions,
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

impl Side {
    fn new(rng: &mut Rng, kind: CellKind, units: usize, go_backwards: bool) -> Self {
        let spec = spec(kind, units, "tanh", "sigmoid", true);
        Self {
            weights: OwnedWeights::random(rng, &spec, F, 0.6),
            states: (0..spec.state_count())
                .map(|_| rng.array((B, units), 0.5))
                .collect(),
            spec,
            options: SequenceOptions {
                go_backwards,
                ..Default::default()
            },
        }
    }

    fn direction<'a>(
        &'a self,
        x: &'a Array3<f64>,
        mask: Option<&'a Array2<bool>>,
    ) -> Direction<'a, f64> {
        Direction {
            spec: &self.spec,
            weights: self.weights.view(),
            input: SequenceInput {
                x: x.view(),
                initial_states: Some(self.states.iter().map(|s| s.view()).collect()),
                mask: mask.map(|m| m.view()),
                input_dropout: None,
                recurrent_dropout: None,
                zoneout: None,
                cancel: Cancel::default(),
            },
            options: self.options,
        }
    }

    /// The differentiable arrays by name, in the order [`grads_of`] lists their gradients.
    fn arrays_mut(&mut self, side: &str) -> Vec<(String, ndarray::ArrayViewMutD<'_, f64>)> {
        let w = &mut self.weights;
        let mut out = vec![
            (format!("{side} kernel"), w.kernel.view_mut().into_dyn()),
            (
                format!("{side} recurrent_kernel"),
                w.recurrent_kernel.view_mut().into_dyn(),
            ),
        ];
        if let Some(b) = w.bias.as_mut() {
            out.push((format!("{side} bias"), b.view_mut().into_dyn()));
        }
        for (k, s) in self.states.iter_mut().enumerate() {
            out.push((
                format!("{side} initial_states[{k}]"),
                s.view_mut().into_dyn(),
            ));
        }
        out
    }
}

fn grads_of(g: &rnnkit::Gradients<f64>) -> Vec<ArrayD<f64>> {
    let mut out = vec![
        g.kernel.clone().into_dyn(),
        g.recurrent_kernel.clone().into_dyn(),
    ];
    out.extend(g.bias.clone().map(ndarray::ArrayBase::into_dyn));
    out.extend(g.initial_states.iter().map(|s| s.clone().into_dyn()));
    out
}

#[derive(Clone)]
struct Case {
    label: String,
    merge: MergeMode,
    return_sequences: bool,
    x: Array3<f64>,
    mask: Option<Array2<bool>>,
    fw: Side,
    bw: Side,
}

impl Case {
    fn new(
        kind: CellKind,
        merge: MergeMode,
        return_sequences: bool,
        masked: bool,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let mut case = Self {
            label: format!(
                "{kind:?} {merge:?} return_sequences={return_sequences} masked={masked}"
            ),
            merge,
            return_sequences,
            x: rng.array((B, T, F), 1.0),
            mask: masked.then(|| mixed_mask(&mut rng, B, T)),
            fw: Side::new(&mut rng, kind, H, false),
            bw: Side::new(&mut rng, kind, H, true),
        };
        // Vary the masked-output option between the two directions too.
        if masked && seed.is_multiple_of(2) {
            case.bw.options.zero_output_for_mask = true;
        }
        case
    }

    fn forward(&self) -> BidirectionalForward<f64> {
        let mask = self.mask.as_ref();
        bidirectional::forward(
            &self.fw.direction(&self.x, mask),
            &self.bw.direction(&self.x, mask),
            self.merge,
            self.return_sequences,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", self.label))
    }
}

/// The random projections of the loss `Σ merged ⊙ r + Σ final states ⊙ r'`.
struct Projections {
    /// One per returned output, `None` for one the loss ignores; empty when it ignores all.
    outputs: Vec<Option<ArrayD<f64>>>,
    fw_states: Vec<Array2<f64>>,
    bw_states: Vec<Array2<f64>>,
}

fn loss(case: &Case, r: &Projections) -> f64 {
    let out = case.forward();
    let merged: f64 = r
        .outputs
        .iter()
        .zip(&out.outputs)
        .filter_map(|(r, o)| r.as_ref().map(|r| (r * o).sum()))
        .sum();
    let states = |s: &[Array2<f64>], r: &[Array2<f64>]| -> f64 {
        s.iter().zip(r).map(|(s, r)| (s * r).sum()).sum()
    };
    merged + states(&out.forward_states, &r.fw_states) + states(&out.backward_states, &r.bw_states)
}

fn analytic(case: &Case, r: &Projections) -> BidirectionalGradients<f64> {
    let out = case.forward();
    let d_out: Vec<_> = r
        .outputs
        .iter()
        .map(|a| a.as_ref().map(|a| a.view()))
        .collect();
    let fw: Vec<_> = r.fw_states.iter().map(|a| Some(a.view())).collect();
    let bw: Vec<_> = r.bw_states.iter().map(|a| Some(a.view())).collect();
    bidirectional::backward(&out.saved, &d_out, &fw, &bw, true, &Cancel::default())
        .unwrap_or_else(|e| panic!("{}: {e}", case.label))
}

/// Every differentiable array of the case, by name.
fn arrays_mut(case: &mut Case) -> Vec<(String, ndarray::ArrayViewMutD<'_, f64>)> {
    let mut out = vec![("x".to_string(), case.x.view_mut().into_dyn())];
    out.extend(case.fw.arrays_mut("forward"));
    out.extend(case.bw.arrays_mut("backward"));
    out
}

/// Sets element `i` of differentiable array `a`, returning its old value.
fn set(case: &mut Case, a: usize, i: usize, value: f64) -> f64 {
    let mut arrays = arrays_mut(case);
    let slot = &mut arrays[a]
        .1
        .as_slice_mut()
        .expect("owned arrays are contiguous")[i];
    std::mem::replace(slot, value)
}

fn get(case: &mut Case, a: usize, i: usize) -> f64 {
    arrays_mut(case)[a]
        .1
        .as_slice()
        .expect("owned arrays are contiguous")[i]
}

/// Which merged outputs the loss of a gradient check uses.
#[derive(Clone, Copy)]
enum Uses {
    All,
    /// `d_outputs` is empty.
    NoOutput,
    /// Only output `k` (of two, for [`MergeMode::None`]); the other's gradient is `None`.
    Only(usize),
}

fn gradient_check(case: Case, uses: Uses, seed: u64) {
    let mut rng = Rng::new(seed);
    let shapes: Vec<Vec<usize>> = case
        .forward()
        .outputs
        .iter()
        .map(|o| o.shape().to_vec())
        .collect();
    let r = Projections {
        outputs: match uses {
            Uses::NoOutput => Vec::new(),
            _ => shapes
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    let r = rng.array(IxDyn(s), 1.0);
                    let used = match uses {
                        Uses::Only(j) => j == k,
                        _ => true,
                    };
                    used.then_some(r)
                })
                .collect(),
        },
        fw_states: case
            .fw
            .states
            .iter()
            .map(|s| rng.array(s.raw_dim(), 1.0))
            .collect(),
        bw_states: case
            .bw
            .states
            .iter()
            .map(|s| rng.array(s.raw_dim(), 1.0))
            .collect(),
    };
    let g = analytic(&case, &r);
    let mut expected = vec![g.input.clone().expect("asked for").into_dyn()];
    expected.extend(grads_of(&g.forward));
    expected.extend(grads_of(&g.backward));

    let step = 1e-6;
    let mut work = case.clone();
    let count = arrays_mut(&mut work).len();
    assert_eq!(count, expected.len(), "{}: gradient count", case.label);
    for (a, expected) in expected.iter().enumerate() {
        let len = arrays_mut(&mut work)[a].1.len();
        let mut numeric = Vec::with_capacity(len);
        for i in 0..len {
            let orig = get(&mut work, a, i);
            set(&mut work, a, i, orig + step);
            let up = loss(&work, &r);
            set(&mut work, a, i, orig - step);
            let down = loss(&work, &r);
            set(&mut work, a, i, orig);
            numeric.push((up - down) / (2.0 * step));
        }
        let name = arrays_mut(&mut work)[a].0.clone();
        let ana = expected.as_slice().unwrap();
        let diff = numeric
            .iter()
            .zip(ana)
            .map(|(n, a)| (n - a).powi(2))
            .sum::<f64>()
            .sqrt();
        let norm = numeric.iter().map(|n| n * n).sum::<f64>().sqrt();
        let rel = diff / norm.max(1e-12);
        assert!(
            rel <= 1e-5,
            "{}: d{name} relative error {rel:e}\nnumeric  {numeric:?}\nanalytic {ana:?}",
            case.label
        );
        assert!(norm > 0.0, "{}: d{name} is identically zero", case.label);
    }
}

/// Keras's merge of the two directions' contributions, written out independently.
fn merge(mode: MergeMode, a: ArrayD<f64>, b: ArrayD<f64>) -> Vec<ArrayD<f64>> {
    match mode {
        MergeMode::Concat => {
            let axis = Axis(a.ndim() - 1);
            vec![concatenate(axis, &[a.view(), b.view()]).unwrap()]
        }
        MergeMode::Sum => vec![&a + &b],
        MergeMode::Mul => vec![&a * &b],
        MergeMode::Ave => vec![(&a + &b) * 0.5],
        MergeMode::None => vec![a, b],
    }
}

#[test]
fn merged_output_equals_merging_two_independent_passes() {
    let mut seed = 0;
    for kind in CELLS {
        for merge_mode in MODES {
            for return_sequences in [true, false] {
                for masked in [false, true] {
                    seed += 1;
                    let case = Case::new(kind, merge_mode, return_sequences, masked, seed);
                    let mask = case.mask.as_ref();
                    let run = |side: &Side| {
                        let d = side.direction(&case.x, mask);
                        sequence::forward(d.spec, &d.weights, &d.input, d.options).unwrap()
                    };
                    let (fw, bw) = (run(&case.fw), run(&case.bw));
                    let (a, b) = if return_sequences {
                        // The backward pass's outputs come in its processing order: flip them.
                        let flipped = bw.outputs.slice(s![.., ..;-1, ..]).to_owned();
                        (fw.outputs.into_dyn(), flipped.into_dyn())
                    } else {
                        // Its last output is the last in processing order, not flipped.
                        let last =
                            |o: &Array3<f64>| o.slice(s![.., T - 1, ..]).to_owned().into_dyn();
                        (last(&fw.outputs), last(&bw.outputs))
                    };
                    let want = merge(merge_mode, a, b);
                    let got = case.forward();
                    assert_eq!(got.outputs, want, "{}", case.label);
                    assert_eq!(got.forward_states, fw.final_states, "{}", case.label);
                    assert_eq!(got.backward_states, bw.final_states, "{}", case.label);
                }
            }
        }
    }
}

/// Every merge mode × `return_sequences` for one cell; masked (with masked steps at both ends of
/// a row, and a fully masked row) when `return_sequences == masked_sequences`, so that across
/// the cells both output forms meet a mask.
fn check_every_merge(kind: CellKind, masked_sequences: bool, seed: u64) {
    let mut seed = seed;
    for merge_mode in MODES {
        for return_sequences in [true, false] {
            seed += 2;
            let masked = return_sequences == masked_sequences;
            let case = Case::new(kind, merge_mode, return_sequences, masked, seed);
            gradient_check(case, Uses::All, seed + 1);
        }
    }
}

// One test per cell so that the harness runs them in parallel.
#[test]
fn lstm_gradients_match_central_differences() {
    check_every_merge(CellKind::Lstm, true, 100);
}

#[test]
fn gru_reset_after_gradients_match_central_differences() {
    check_every_merge(CellKind::Gru { reset_after: true }, false, 200);
}

#[test]
fn gru_reset_before_gradients_match_central_differences() {
    check_every_merge(CellKind::Gru { reset_after: false }, true, 300);
}

#[test]
fn simple_rnn_gradients_match_central_differences() {
    check_every_merge(CellKind::SimpleRnn, false, 400);
}

#[test]
fn gradients_with_unused_outputs() {
    for (i, kind) in CELLS.into_iter().enumerate() {
        let seed = 500 + 10 * i as u64;
        // An empty `d_outputs`: only the final states carry a gradient.
        let case = Case::new(kind, MergeMode::Concat, i % 2 == 0, true, seed);
        gradient_check(case, Uses::NoOutput, seed + 1);
        // One of the two separate outputs unused.
        let case = Case::new(kind, MergeMode::None, i % 2 == 1, true, seed + 2);
        gradient_check(case, Uses::Only(i % 2), seed + 3);
    }
}

fn backward_err(case: &Case, d_outputs: &[ArrayD<f64>]) -> String {
    let out = case.forward();
    let views: Vec<_> = d_outputs.iter().map(|a| Some(a.view())).collect();
    bidirectional::backward(&out.saved, &views, &[], &[], true, &Cancel::default())
        .expect_err("bad gradients must be rejected")
        .to_string()
}

#[test]
fn wrong_output_gradient_count_or_shape_is_an_error() {
    let zeros = |shape: &[usize]| ArrayD::<f64>::zeros(IxDyn(shape));
    let concat = Case::new(CellKind::Lstm, MergeMode::Concat, true, false, 500);
    assert_eq!(
        backward_err(&concat, &[zeros(&[B, T, 2 * H]), zeros(&[B, T, 2 * H])]),
        "d_outputs: expected 1 arrays, received 2"
    );
    assert_eq!(
        backward_err(&concat, &[zeros(&[B, T, H])]),
        "d_outputs[0]: expected shape (3, 4, 4), received (3, 4, 2)"
    );
    let last = Case::new(
        CellKind::Gru { reset_after: true },
        MergeMode::Sum,
        false,
        false,
        501,
    );
    assert_eq!(
        backward_err(&last, &[zeros(&[B, T, H])]),
        "d_outputs[0]: expected shape (3, 2), received (3, 4, 2)"
    );
    let separate = Case::new(CellKind::SimpleRnn, MergeMode::None, true, false, 502);
    assert_eq!(
        backward_err(&separate, &[zeros(&[B, T, H])]),
        "d_outputs: expected 2 arrays, received 1"
    );
    assert_eq!(
        backward_err(&separate, &[zeros(&[B, T, H]), zeros(&[B, T - 1, H])]),
        "d_outputs[1]: expected shape (3, 4, 2), received (3, 3, 2)"
    );
    // The right count and shapes are accepted.
    let out = separate.forward();
    let good = [zeros(&[B, T, H]), zeros(&[B, T, H])];
    let views: Vec<_> = good.iter().map(|a| Some(a.view())).collect();
    assert!(
        bidirectional::backward(&out.saved, &views, &[], &[], true, &Cancel::default()).is_ok()
    );
}

#[test]
fn mismatched_directions_are_errors() {
    let mut rng = Rng::new(600);
    let case = Case::new(
        CellKind::Gru { reset_after: false },
        MergeMode::Sum,
        true,
        false,
        601,
    );
    // `sum` needs both outputs the same width.
    let wide = Side::new(&mut rng, CellKind::Gru { reset_after: false }, H + 1, true);
    let err = bidirectional::forward(
        &case.fw.direction(&case.x, None),
        &wide.direction(&case.x, None),
        MergeMode::Sum,
        true,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "backward layer output: expected shape (3, 4, 2), received (3, 4, 3)"
    );
    // `concat` takes different widths.
    let out = bidirectional::forward(
        &case.fw.direction(&case.x, None),
        &wide.direction(&case.x, None),
        MergeMode::Concat,
        false,
    )
    .unwrap();
    assert_eq!(out.outputs[0].shape(), &[B, 2 * H + 1]);

    let shorter = case.x.slice(s![.., 1.., ..]).to_owned();
    let err = bidirectional::forward(
        &case.fw.direction(&case.x, None),
        &case.bw.direction(&shorter, None),
        MergeMode::Sum,
        true,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "backward input: expected shape (3, 4), received (3, 3)"
    );

    // A direction's own errors come through unchanged.
    let mut bad = case.bw.clone();
    bad.weights.kernel = Array2::zeros((F + 1, 3 * H));
    let err = bidirectional::forward(
        &case.fw.direction(&case.x, None),
        &bad.direction(&case.x, None),
        MergeMode::Sum,
        true,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "kernel: expected shape (3, 6), received (4, 6)"
    );
}
