//! Property tests of the sequence loop: invariants that must hold exactly for every cell and
//! option (all-true mask == no mask, `go_backwards` == reversed input, rows independent, threads ==
//! serial, masked steps keep the state), and the errors bad input gets.

mod common;

use common::{cast, cell_spec, mixed_mask, spec, Extra, OwnedWeights, Rng, CELLS};
use ndarray::{s, Array, Array2, Array3, Axis, Dimension};
use rnnkit::{
    sequence, Activation, Cancel, CellKind, CellSpec, Error, Float, Gradients, MergeMode,
    OutputGrad, Precision, SequenceInput, SequenceOptions, Weights, Zoneout,
};

/// Everything one forward + backward pass reads, in the element type `T`.
#[derive(Clone, Debug)]
struct Setup<T> {
    label: String,
    spec: CellSpec,
    options: SequenceOptions,
    x: Array3<T>,
    kernel: Array2<T>,
    recurrent_kernel: Array2<T>,
    bias: Option<Array2<T>>,
    peephole: Option<Array2<T>>,
    projection: Option<Array2<T>>,
    layer_norm: Option<Array2<T>>,
    cell_norm: Option<Array2<T>>,
    states: Option<Vec<Array2<T>>>,
    mask: Option<Array2<bool>>,
    input_dropout: Option<Array3<T>>,
    recurrent_dropout: Option<Array3<T>>,
    /// Per state, `(batch, time, state units)` 0/1 zoneout masks.
    zoneout: Option<Vec<Array3<T>>>,
    /// Per state, the seed of zoneout masks the pass draws itself at [`DRAWN_RATE`] (instead
    /// of `zoneout`).
    zoneout_seeds: Option<Vec<u64>>,
    /// `(batch, time, units)` gradient of every output, in processing order.
    d_outputs: Array3<T>,
    /// `(batch, units)` gradient of the last output; used instead of `d_outputs` if `last_only`.
    d_last: Array2<T>,
    last_only: bool,
    /// Gradients of the final states; empty for none.
    d_states: Vec<Array2<T>>,
}

/// What a forward + backward pass gives.
struct Run<T> {
    outputs: Array3<T>,
    final_states: Vec<Array2<T>>,
    grads: Gradients<T>,
}

impl<T> Run<T> {
    fn d_input(&self) -> &Array3<T> {
        self.grads
            .input
            .as_ref()
            .expect("the input gradient was asked for")
    }
}

/// The options each property is checked under.
#[derive(Clone, Copy)]
struct Variant {
    act: &'static str,
    ract: &'static str,
    use_bias: bool,
    states: bool,
    mask: bool,
    zero_output: bool,
    go_backwards: bool,
    input_dropout: bool,
    recurrent_dropout: bool,
    last_only: bool,
    d_states: bool,
    zoneout: bool,
}

const PLAIN: Variant = Variant {
    act: "tanh",
    ract: "sigmoid",
    use_bias: true,
    states: false,
    mask: false,
    zero_output: false,
    go_backwards: false,
    input_dropout: false,
    recurrent_dropout: false,
    last_only: false,
    d_states: false,
    zoneout: false,
};

const VARIANTS: [Variant; 6] = [
    PLAIN,
    Variant {
        states: true,
        mask: true,
        d_states: true,
        ..PLAIN
    },
    Variant {
        states: true,
        mask: true,
        zero_output: true,
        input_dropout: true,
        recurrent_dropout: true,
        last_only: true,
        zoneout: true,
        ..PLAIN
    },
    Variant {
        act: "relu",
        ract: "hard_sigmoid",
        use_bias: false,
        states: true,
        mask: true,
        input_dropout: true,
        recurrent_dropout: true,
        d_states: true,
        ..PLAIN
    },
    Variant {
        act: "gelu",
        ract: "softsign",
        mask: true,
        zero_output: true,
        go_backwards: true,
        input_dropout: true,
        d_states: true,
        zoneout: true,
        ..PLAIN
    },
    Variant {
        act: "elu",
        ract: "silu",
        use_bias: false,
        states: true,
        go_backwards: true,
        recurrent_dropout: true,
        last_only: true,
        d_states: true,
        ..PLAIN
    },
];

impl<T: Float> Setup<T> {
    /// Random arrays of `(batch, time, features)` input and `units` for `kind` under `v`.
    #[allow(clippy::too_many_arguments)]
    fn new(
        cell: (CellKind, Extra),
        v: Variant,
        seed: u64,
        b: usize,
        t: usize,
        f: usize,
        h: usize,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let spec = cell_spec(cell, h, v.act, v.ract, v.use_bias);
        let (kind, extra) = cell;
        let out = spec.output_units();
        let g = spec.gates();
        let w = OwnedWeights::random(&mut rng, &spec, f, 0.6);
        let states = (0..spec.state_count())
            .map(|i| cast(&rng.array((b, spec.state_units(i)), 0.5)))
            .collect();
        Self {
            label: format!("{kind:?} ({extra:?}) {} {}", v.act, v.ract),
            spec,
            options: SequenceOptions {
                go_backwards: v.go_backwards,
                zero_output_for_mask: v.zero_output,
                ..Default::default()
            },
            x: cast(&rng.array((b, t, f), 1.0)),
            kernel: cast(&w.kernel),
            recurrent_kernel: cast(&w.recurrent_kernel),
            bias: w.bias.as_ref().map(cast),
            peephole: w.peephole.as_ref().map(cast),
            projection: w.projection.as_ref().map(cast),
            layer_norm: w.layer_norm.as_ref().map(cast),
            cell_norm: w.cell_norm.as_ref().map(cast),
            states: v.states.then_some(states),
            mask: v.mask.then(|| mixed_mask(&mut rng, b, t)),
            input_dropout: v.input_dropout.then(|| cast(&rng.dropout(g, b, f, 0.3))),
            recurrent_dropout: v
                .recurrent_dropout
                .then(|| cast(&rng.dropout(g, b, out, 0.4))),
            zoneout: v.zoneout.then(|| {
                (0..spec.state_count())
                    .map(|i| {
                        let keep = |_| f64::from(u8::from(rng.uniform(0.0, 1.0) < 0.3));
                        cast(&Array3::from_shape_fn((b, t, spec.state_units(i)), keep))
                    })
                    .collect()
            }),
            zoneout_seeds: None,
            d_outputs: cast(&rng.array((b, t, out), 1.0)),
            d_last: cast(&rng.array((b, out), 1.0)),
            last_only: v.last_only,
            d_states: if v.d_states {
                (0..spec.state_count())
                    .map(|i| cast(&rng.array((b, spec.state_units(i)), 1.0)))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Every cell in [`CELLS`] under every variant in [`VARIANTS`].
    fn all(seed: u64, b: usize, t: usize, f: usize, h: usize) -> Vec<Self> {
        let mut out = Vec::new();
        for (i, kind) in CELLS.into_iter().enumerate() {
            for (j, v) in VARIANTS.into_iter().enumerate() {
                out.push(Self::new(kind, v, seed + (10 * i + j) as u64, b, t, f, h));
            }
        }
        out
    }

    fn weights(&self) -> Weights<'_, T> {
        Weights {
            kernel: self.kernel.view(),
            recurrent_kernel: self.recurrent_kernel.view(),
            bias: self.bias.as_ref().map(|b| b.view()),
            peephole: self.peephole.as_ref().map(|p| p.view()),
            projection: self.projection.as_ref().map(|p| p.view()),
            layer_norm: self.layer_norm.as_ref().map(|p| p.view()),
            cell_norm: self.cell_norm.as_ref().map(|p| p.view()),
        }
    }

    fn input(&self) -> SequenceInput<'_, T> {
        SequenceInput {
            x: self.x.view(),
            initial_states: self
                .states
                .as_ref()
                .map(|s| s.iter().map(|a| a.view()).collect()),
            mask: self.mask.as_ref().map(|m| m.view()),
            input_dropout: self.input_dropout.as_ref().map(|m| m.view()),
            recurrent_dropout: self.recurrent_dropout.as_ref().map(|m| m.view()),
            zoneout: match &self.zoneout_seeds {
                Some(seeds) => Some(Zoneout::Drawn {
                    rate: DRAWN_RATE,
                    seeds: seeds.clone(),
                }),
                None => (self.zoneout.as_ref())
                    .map(|z| Zoneout::Weights(z.iter().map(|m| m.view()).collect())),
            },
            cancel: Cancel::default(),
        }
    }

    fn run(&self) -> Run<T> {
        self.run_with(true)
    }

    /// A forward and a backward pass; `input_gradient` as in `sequence::backward`.
    fn run_with(&self, input_gradient: bool) -> Run<T> {
        let fwd = sequence::forward(&self.spec, &self.weights(), &self.input(), self.options)
            .unwrap_or_else(|e| panic!("{}: forward failed: {e}", self.label));
        let d_out = if self.last_only {
            OutputGrad::Last(self.d_last.view())
        } else {
            OutputGrad::Sequence(self.d_outputs.view())
        };
        let d_states: Vec<_> = self.d_states.iter().map(|d| Some(d.view())).collect();
        let grads = sequence::backward(
            &fwd.saved,
            d_out,
            &d_states,
            input_gradient,
            &Cancel::default(),
        )
        .unwrap_or_else(|e| panic!("{}: backward failed: {e}", self.label));
        Run {
            outputs: fwd.outputs,
            final_states: fwd.final_states,
            grads,
        }
    }

    /// Batch row `i` alone: its slice of every per-row array.
    fn row(&self, i: usize) -> Self {
        let r = i..i + 1;
        Self {
            label: format!("{} row {i}", self.label),
            x: self.x.slice(s![r.clone(), .., ..]).to_owned(),
            states: self.states.as_ref().map(|st| {
                st.iter()
                    .map(|a| a.slice(s![r.clone(), ..]).to_owned())
                    .collect()
            }),
            mask: self
                .mask
                .as_ref()
                .map(|m| m.slice(s![r.clone(), ..]).to_owned()),
            input_dropout: self
                .input_dropout
                .as_ref()
                .map(|m| m.slice(s![.., r.clone(), ..]).to_owned()),
            recurrent_dropout: self
                .recurrent_dropout
                .as_ref()
                .map(|m| m.slice(s![.., r.clone(), ..]).to_owned()),
            zoneout: self.zoneout.as_ref().map(|z| {
                z.iter()
                    .map(|m| m.slice(s![r.clone(), .., ..]).to_owned())
                    .collect()
            }),
            d_outputs: self.d_outputs.slice(s![r.clone(), .., ..]).to_owned(),
            d_last: self.d_last.slice(s![r.clone(), ..]).to_owned(),
            d_states: self
                .d_states
                .iter()
                .map(|a| a.slice(s![r.clone(), ..]).to_owned())
                .collect(),
            ..self.clone()
        }
    }
}

/// Equal within 1e-12 relative to magnitude: for runs over different batch sizes, whose products
/// over all rows (the hoisted input projection, and the weight gradients that sum over rows)
/// may block the work differently and so round differently.
fn assert_near<D: Dimension>(what: &str, a: &Array<f64, D>, b: &Array<f64, D>) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    for ((idx, &x), &y) in a.indexed_iter().zip(b.iter()) {
        assert!(
            (x - y).abs() <= 1e-12 * y.abs().max(1.0),
            "{what}: differs at {idx:?}: {x:?} vs {y:?}"
        );
    }
}

fn assert_all_near(what: &str, a: &[Array2<f64>], b: &[Array2<f64>]) {
    assert_eq!(a.len(), b.len(), "{what}: counts differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_near(&format!("{what}[{i}]"), x, y);
    }
}

/// Equal values with equal signs: bit-identical for the NaN-free arrays compared here (and a
/// NaN anywhere fails).
fn assert_identical<T: Float, D: Dimension>(what: &str, a: &Array<T, D>, b: &Array<T, D>) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    for ((idx, &x), &y) in a.indexed_iter().zip(b.iter()) {
        assert!(
            x == y && x.is_sign_negative() == y.is_sign_negative(),
            "{what}: differs at {idx:?}: {x:?} vs {y:?}"
        );
    }
}

fn assert_all_identical<T: Float, D: Dimension>(what: &str, a: &[Array<T, D>], b: &[Array<T, D>]) {
    assert_eq!(a.len(), b.len(), "{what}: counts differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_identical(&format!("{what}[{i}]"), x, y);
    }
}

/// Every output, final state and gradient bit-identical.
fn assert_runs_identical<T: Float>(what: &str, a: &Run<T>, b: &Run<T>) {
    assert_identical(&format!("{what}: outputs"), &a.outputs, &b.outputs);
    assert_all_identical(
        &format!("{what}: final states"),
        &a.final_states,
        &b.final_states,
    );
    assert_eq!(
        a.grads.input.is_some(),
        b.grads.input.is_some(),
        "{what}: d input"
    );
    if let (Some(x), Some(y)) = (&a.grads.input, &b.grads.input) {
        assert_identical(&format!("{what}: d input"), x, y);
    }
    assert_identical(
        &format!("{what}: d kernel"),
        &a.grads.kernel,
        &b.grads.kernel,
    );
    assert_identical(
        &format!("{what}: d recurrent_kernel"),
        &a.grads.recurrent_kernel,
        &b.grads.recurrent_kernel,
    );
    assert_eq!(
        a.grads.bias.is_some(),
        b.grads.bias.is_some(),
        "{what}: bias"
    );
    if let (Some(x), Some(y)) = (&a.grads.bias, &b.grads.bias) {
        assert_identical(&format!("{what}: d bias"), x, y);
    }
    assert_eq!(a.grads.peephole.is_some(), b.grads.peephole.is_some());
    if let (Some(x), Some(y)) = (&a.grads.peephole, &b.grads.peephole) {
        assert_identical(&format!("{what}: d peephole"), x, y);
    }
    assert_eq!(a.grads.projection.is_some(), b.grads.projection.is_some());
    if let (Some(x), Some(y)) = (&a.grads.projection, &b.grads.projection) {
        assert_identical(&format!("{what}: d projection"), x, y);
    }
    assert_eq!(a.grads.layer_norm.is_some(), b.grads.layer_norm.is_some());
    if let (Some(x), Some(y)) = (&a.grads.layer_norm, &b.grads.layer_norm) {
        assert_identical(&format!("{what}: d layer_norm"), x, y);
    }
    assert_eq!(a.grads.cell_norm.is_some(), b.grads.cell_norm.is_some());
    if let (Some(x), Some(y)) = (&a.grads.cell_norm, &b.grads.cell_norm) {
        assert_identical(&format!("{what}: d cell_norm"), x, y);
    }
    assert_all_identical(
        &format!("{what}: d initial states"),
        &a.grads.initial_states,
        &b.grads.initial_states,
    );
}

/// `(batch, time, ·)` reversed along time.
fn flip_time<T: Clone>(a: &Array3<T>) -> Array3<T> {
    a.slice(s![.., ..;-1, ..]).to_owned()
}

// Small enough for debug builds, with T ≥ 3 for the masks' both-ends pattern and several rows.
const B: usize = 5;
const T: usize = 6;
const F: usize = 4;
const H: usize = 3;

#[test]
fn all_true_mask_equals_no_mask() {
    for base in Setup::<f64>::all(100, B, T, F, H) {
        let unmasked = Setup {
            mask: None,
            ..base.clone()
        };
        let all_true = Setup {
            mask: Some(Array2::from_elem((B, T), true)),
            ..base.clone()
        };
        assert_runs_identical(&base.label, &all_true.run(), &unmasked.run());
    }
}

#[test]
fn go_backwards_equals_a_plain_pass_over_reversed_time() {
    for base in Setup::<f64>::all(200, B, T, F, H) {
        let backwards = Setup {
            options: SequenceOptions {
                go_backwards: true,
                ..base.options
            },
            ..base.clone()
        };
        // The same output gradients: both are in processing order.
        let reversed = Setup {
            options: SequenceOptions {
                go_backwards: false,
                ..base.options
            },
            x: flip_time(&base.x),
            mask: base
                .mask
                .as_ref()
                .map(|m| m.slice(s![.., ..;-1]).to_owned()),
            zoneout: (base.zoneout.as_ref()).map(|z| z.iter().map(flip_time).collect()),
            ..base.clone()
        };
        let (a, mut b) = (backwards.run(), reversed.run());
        // Input gradients come back in input time order, so the reversed pass's flips back.
        b.grads.input = Some(flip_time(b.d_input()));
        assert_runs_identical(&base.label, &a, &b);
    }
}

#[test]
fn batch_rows_are_independent() {
    for base in Setup::<f64>::all(300, B, T, F, H) {
        let batched = base.run();
        let mut weight_sums: Option<[Array2<f64>; 3]> = None;
        for i in 0..B {
            let row = base.row(i).run();
            let what = format!("{} row {i}", base.label);
            let r = i..i + 1;
            assert_near(
                &format!("{what}: outputs"),
                &row.outputs,
                &batched.outputs.slice(s![r.clone(), .., ..]).to_owned(),
            );
            let slice_rows = |v: &[Array2<f64>]| -> Vec<Array2<f64>> {
                v.iter()
                    .map(|a| a.slice(s![r.clone(), ..]).to_owned())
                    .collect()
            };
            assert_all_near(
                &format!("{what}: final states"),
                &row.final_states,
                &slice_rows(&batched.final_states),
            );
            assert_near(
                &format!("{what}: d input"),
                row.d_input(),
                &batched.d_input().slice(s![r.clone(), .., ..]).to_owned(),
            );
            assert_all_near(
                &format!("{what}: d initial states"),
                &row.grads.initial_states,
                &slice_rows(&batched.grads.initial_states),
            );
            let g = &row.grads;
            let bias = g.bias.clone().unwrap_or_else(|| Array2::zeros((1, 1)));
            let parts = [g.kernel.clone(), g.recurrent_kernel.clone(), bias];
            weight_sums = Some(match weight_sums {
                None => parts,
                Some([k, rk, b]) => {
                    let [pk, prk, pb] = parts;
                    [k + pk, rk + prk, b + pb]
                }
            });
        }
        // Weight gradients sum over rows (and steps) in one product, a different summation order
        // than adding up per-row gradients, so these agree to rounding only.
        let [k, rk, b] = weight_sums.unwrap();
        let g = &batched.grads;
        let mut pairs = vec![
            ("kernel", k, &g.kernel),
            ("recurrent_kernel", rk, &g.recurrent_kernel),
        ];
        if let Some(gb) = &g.bias {
            pairs.push(("bias", b, gb));
        }
        for (name, sum, full) in pairs {
            let diff = (&sum - full).mapv(|v| v * v).sum().sqrt();
            let norm = full.mapv(|v| v * v).sum().sqrt();
            assert!(
                diff <= 1e-12 * norm && norm > 0.0,
                "{}: Σ rows d{name} vs batched: {diff:e} of {norm:e}",
                base.label
            );
        }
    }
}

#[test]
fn thread_count_does_not_change_any_bit() {
    // 37 rows split into 1, 2, 3 or 4 slices of 37, 19, 13 or 10 rows.
    let variants = [VARIANTS[2], VARIANTS[3], VARIANTS[4]];
    for (i, kind) in CELLS.into_iter().enumerate() {
        for (j, v) in variants.into_iter().enumerate() {
            let mut setup = Setup::<f32>::new(kind, v, 400 + (10 * i + j) as u64, 37, 7, 9, 8);
            // bfloat16 products too: their kernel follows the batch, never the split.
            for precision in [Precision::Full, Precision::Bf16] {
                setup.options.precision = precision;
                let in_pool = |n: usize| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .build()
                        .unwrap()
                        .install(|| setup.run())
                };
                let serial = in_pool(1);
                for n in 2..=4 {
                    let what = format!("{} {precision:?} with {n} threads", setup.label);
                    assert_runs_identical(&what, &in_pool(n), &serial);
                }
            }
        }
    }
}

/// The forward pass on one thread: outputs and final states.
fn forward_alone<T: Float>(setup: &Setup<T>) -> (Array3<T>, Vec<Array2<T>>) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build();
    pool.unwrap().install(|| {
        let input = setup.input();
        let fwd = sequence::forward(&setup.spec, &setup.weights(), &input, setup.options);
        let fwd = fwd.unwrap_or_else(|e| panic!("{}: forward failed: {e}", setup.label));
        (fwd.outputs, fwd.final_states)
    })
}

#[test]
fn steps_projecting_their_inputs_give_the_bits_of_the_hoisted_projection() {
    // 16 rows in one slice: each step projects its own inputs with the packed tiles; one row
    // alone: the whole sequence's projection comes first, from the gemm crate.
    for (i, kind) in CELLS.into_iter().enumerate() {
        for (j, v) in [PLAIN, VARIANTS[1]].into_iter().enumerate() {
            let setup = Setup::<f32>::new(kind, v, 500 + (10 * i + j) as u64, 16, 6, 9, 8);
            let (outputs, states) = forward_alone(&setup);
            for r in 0..16 {
                let (row_outputs, row_states) = forward_alone(&setup.row(r));
                let what = format!("{} row {r}", setup.label);
                let rows = s![r..=r, .., ..];
                assert_identical(&what, &row_outputs, &outputs.slice(rows).to_owned());
                let states: Vec<_> = (states.iter())
                    .map(|a| a.slice(s![r..=r, ..]).to_owned())
                    .collect();
                assert_all_identical(&what, &row_states, &states);
            }
        }
    }
}

#[test]
fn a_recurrent_dropout_mask_of_ones_gives_the_bits_of_none() {
    // Without recurrent dropout one product covers every gate at once; with it, one per gate.
    for (i, kind) in CELLS.into_iter().enumerate() {
        let mut setup = Setup::<f32>::new(kind, PLAIN, 600 + i as u64, 5, 6, 9, 20);
        let plain = forward_alone(&setup);
        let (g, b, out) = (setup.spec.gates(), 5, setup.spec.output_units());
        setup.recurrent_dropout = Some(Array3::ones((g, b, out)));
        let ones = forward_alone(&setup);
        assert_identical(&setup.label, &ones.0, &plain.0);
        assert_all_identical(&setup.label, &ones.1, &plain.1);
    }
}

/// The rate of the zoneout masks drawn in the pass (`Setup::zoneout_seeds`).
const DRAWN_RATE: f64 = 0.3;

/// Zoneout drawn in the pass equals the masks of its seeds given as weights (batch and time
/// swapped), with every thread count.
fn check_drawn_zoneout<T: Float>(seed: u64) {
    for (i, kind) in CELLS.into_iter().enumerate() {
        // Masks, go_backwards, dropout; 7 units, so rows also start on odd stream elements.
        for (j, v) in [VARIANTS[2], VARIANTS[4]].into_iter().enumerate() {
            let (b, t) = (37, 6);
            let mut given = Setup::<T>::new(kind, v, seed + (10 * i + j) as u64, b, t, 5, 7);
            let seeds: Vec<u64> = (0..given.spec.state_count() as u64)
                .map(|s| 90 + s)
                .collect();
            given.zoneout = Some(
                (seeds.iter().enumerate())
                    .map(|(i, &s)| {
                        let shape = (t, b, given.spec.state_units(i));
                        let m = rnnkit::core::zoneout::masks::<T>(s, DRAWN_RATE, shape).unwrap();
                        m.permuted_axes([1, 0, 2]).as_standard_layout().into_owned()
                    })
                    .collect(),
            );
            let drawn = Setup {
                zoneout: None,
                zoneout_seeds: Some(seeds),
                ..given.clone()
            };
            let want = given.run();
            for n in 1..=4 {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build();
                let what = format!("{} drawn zoneout with {n} threads", given.label);
                assert_runs_identical(&what, &pool.unwrap().install(|| drawn.run()), &want);
            }
        }
    }
}

#[test]
fn drawn_zoneout_is_its_seeds_masks_with_any_thread_count() {
    check_drawn_zoneout::<f32>(700);
    check_drawn_zoneout::<f64>(800);
}

#[test]
fn an_inference_pass_gives_the_same_outputs_and_refuses_a_backward_pass() {
    for base in Setup::<f64>::all(600, B, T, F, H) {
        let run = |inference| {
            let options = SequenceOptions {
                inference,
                ..base.options
            };
            sequence::forward(&base.spec, &base.weights(), &base.input(), options).unwrap()
        };
        let (training, inference) = (run(false), run(true));
        assert_identical(&base.label, &inference.outputs, &training.outputs);
        assert_all_identical(&base.label, &inference.final_states, &training.final_states);
        let refused = sequence::backward(
            &inference.saved,
            OutputGrad::Sequence(base.d_outputs.view()),
            &[],
            true,
            &Cancel::default(),
        );
        assert!(
            message(refused)
                .starts_with("saved: expected the activations of a forward pass run for training"),
            "{}",
            base.label
        );
    }
}

#[test]
fn skipping_the_input_gradient_changes_no_other_gradient() {
    for base in Setup::<f64>::all(700, B, T, F, H) {
        let (all, weights_only) = (base.run(), base.run_with(false));
        assert!(weights_only.grads.input.is_none(), "{}", base.label);
        let mut expected = all;
        expected.grads.input = None;
        assert_runs_identical(&base.label, &expected, &weights_only);
    }
}

#[test]
fn the_last_output_alone_is_the_last_step_of_all_outputs() {
    for base in Setup::<f64>::all(800, B, T, F, H) {
        let last = Setup {
            options: SequenceOptions {
                last_output_only: true,
                ..base.options
            },
            ..base.clone()
        };
        let (mut all, only) = (base.run(), last.run());
        let out = base.spec.output_units();
        assert_eq!(only.outputs.dim(), (B, 1, out), "{}", base.label);
        all.outputs = all.outputs.slice(s![.., T - 1.., ..]).to_owned();
        assert_runs_identical(&base.label, &all, &only);
    }
}

#[test]
fn masked_steps_keep_the_previous_state() {
    for base in Setup::<f64>::all(500, B, T, F, H) {
        let Some(mask) = base.mask.clone() else {
            continue;
        };
        let zero_output = base.options.zero_output_for_mask;
        let out = base.run();
        // Processing order: reversed along time with go_backwards.
        let (x, mask) = if base.options.go_backwards {
            (flip_time(&base.x), mask.slice(s![.., ..;-1]).to_owned())
        } else {
            (base.x.clone(), mask)
        };
        let mut saw_fully_masked = false;
        for i in 0..B {
            let what = format!("{} row {i}", base.label);
            let used: Vec<usize> = (0..T).filter(|&s| mask[[i, s]]).collect();
            let row = base.row(i);
            let initial: Vec<Array2<f64>> = match &row.states {
                Some(st) => st.clone(),
                None => (0..base.spec.state_count())
                    .map(|k| Array2::zeros((1, base.spec.state_units(k))))
                    .collect(),
            };
            // The row over its used steps only, unmasked, is what the masked row must follow.
            let (outputs, finals) = if used.is_empty() {
                saw_fully_masked = true;
                (Array3::zeros((1, 0, base.spec.output_units())), initial)
            } else {
                let compact = Setup {
                    options: SequenceOptions::default(),
                    x: x.select(Axis(1), &used)
                        .slice(s![i..i + 1, .., ..])
                        .to_owned(),
                    mask: None,
                    // In processing order, like `x`, over the used steps.
                    zoneout: row.zoneout.as_ref().map(|z| {
                        z.iter()
                            .map(|m| match base.options.go_backwards {
                                true => flip_time(m).select(Axis(1), &used),
                                false => m.select(Axis(1), &used),
                            })
                            .collect()
                    }),
                    ..row
                };
                let fwd = sequence::forward(
                    &compact.spec,
                    &compact.weights(),
                    &compact.input(),
                    compact.options,
                )
                .unwrap();
                (fwd.outputs, fwd.final_states)
            };
            for (k, (got, want)) in out.final_states.iter().zip(&finals).enumerate() {
                assert_near(
                    &format!("{what}: final state {k}"),
                    &got.slice(s![i..i + 1, ..]).to_owned(),
                    want,
                );
            }
            if let Some(&last) = used.last() {
                assert_identical(
                    &format!("{what}: final h vs output of the last used step"),
                    &out.final_states[0].row(i).to_owned(),
                    &out.outputs.slice(s![i, last, ..]).to_owned(),
                );
            }
            let mut done = 0;
            for step in 0..T {
                let got = out.outputs.slice(s![i, step, ..]).to_owned();
                let want = if mask[[i, step]] {
                    done += 1;
                    outputs.slice(s![0, done - 1, ..]).to_owned()
                } else if zero_output || done == 0 {
                    ndarray::Array1::zeros(base.spec.output_units())
                } else {
                    outputs.slice(s![0, done - 1, ..]).to_owned()
                };
                assert_near(&format!("{what}: output {step}"), &got, &want);
                if !mask[[i, step]] {
                    // A masked step reads nothing of its input.
                    let t_in = if base.options.go_backwards {
                        T - 1 - step
                    } else {
                        step
                    };
                    let dx = out.d_input().slice(s![i, t_in, ..]);
                    assert!(
                        dx.iter().all(|&v| v == 0.0),
                        "{what}: d input at masked step {step}: {dx}"
                    );
                }
            }
        }
        assert!(saw_fully_masked, "the masks include a fully masked row");
    }
}

/// The Display text of an error, failing if there is none.
fn message<O: std::fmt::Debug>(r: Result<O, Error>) -> String {
    r.expect_err("bad input must be rejected").to_string()
}

fn forward_err(s: &Setup<f64>) -> String {
    message(sequence::forward(
        &s.spec,
        &s.weights(),
        &s.input(),
        s.options,
    ))
}

#[test]
fn bad_forward_input_is_an_error_naming_the_argument() {
    let (b, t) = (2, 5);
    let lstm = Setup::<f64>::new((CellKind::Lstm, Extra::Keras), VARIANTS[1], 600, b, t, F, H);
    assert!(sequence::forward(&lstm.spec, &lstm.weights(), &lstm.input(), lstm.options).is_ok());
    let cases: Vec<(Setup<f64>, &str)> = vec![
        (
            Setup {
                kernel: Array2::zeros((5, 12)),
                ..lstm.clone()
            },
            "kernel: expected shape (4, 12), received (5, 12)",
        ),
        (
            Setup {
                recurrent_kernel: Array2::zeros((3, 9)),
                ..lstm.clone()
            },
            "recurrent_kernel: expected shape (3, 12), received (3, 9)",
        ),
        (
            Setup {
                bias: None,
                ..lstm.clone()
            },
            "bias: expected an array since use_bias is true, received None",
        ),
        (
            Setup {
                spec: spec(CellKind::Lstm, H, "tanh", "sigmoid", false),
                ..lstm.clone()
            },
            "bias: expected None since use_bias is false, received an array",
        ),
        (
            Setup {
                bias: Some(Array2::zeros((2, 12))),
                ..lstm.clone()
            },
            "bias: expected shape (1, 12), received (2, 12)",
        ),
        (
            Setup {
                states: Some(vec![Array2::zeros((b, H))]),
                ..lstm.clone()
            },
            "initial_states: expected 2 arrays, received 1",
        ),
        (
            Setup {
                states: Some(vec![Array2::zeros((b, H)), Array2::zeros((b, 4))]),
                ..lstm.clone()
            },
            "initial_states[1]: expected shape (2, 3), received (2, 4)",
        ),
        (
            Setup {
                mask: Some(Array2::from_elem((b, t - 1), true)),
                ..lstm.clone()
            },
            "mask: expected shape (2, 5), received (2, 4)",
        ),
        (
            Setup {
                input_dropout: Some(Array3::ones((1, b, F))),
                ..lstm.clone()
            },
            "input_dropout: expected shape (4, 2, 4), received (1, 2, 4)",
        ),
        (
            Setup {
                recurrent_dropout: Some(Array3::ones((4, b, F))),
                ..lstm.clone()
            },
            "recurrent_dropout: expected shape (4, 2, 3), received (4, 2, 4)",
        ),
    ];
    for (setup, want) in cases {
        assert_eq!(forward_err(&setup), want);
    }

    // GRU with reset_after has two bias rows, without it one.
    let gru = Setup::<f64>::new(
        (CellKind::Gru { reset_after: true }, Extra::Keras),
        PLAIN,
        601,
        b,
        t,
        F,
        H,
    );
    let one_row = Setup {
        bias: Some(Array2::zeros((1, 9))),
        ..gru.clone()
    };
    assert_eq!(
        forward_err(&one_row),
        "bias: expected shape (2, 9), received (1, 9)"
    );
    let gru_before = Setup::<f64>::new(
        (CellKind::Gru { reset_after: false }, Extra::Keras),
        PLAIN,
        602,
        b,
        t,
        F,
        H,
    );
    let two_rows = Setup {
        bias: Some(Array2::zeros((2, 9))),
        ..gru_before
    };
    assert_eq!(
        forward_err(&two_rows),
        "bias: expected shape (1, 9), received (2, 9)"
    );
    let simple = Setup::<f64>::new((CellKind::SimpleRnn, Extra::Keras), PLAIN, 603, b, t, F, H);
    let two_states = Setup {
        states: Some(vec![Array2::zeros((b, H)), Array2::zeros((b, H))]),
        ..simple
    };
    assert_eq!(
        forward_err(&two_states),
        "initial_states: expected 1 arrays, received 2"
    );
}

#[test]
fn bad_backward_input_is_an_error_naming_the_argument() {
    let (b, t) = (2, 5);
    let lstm = Setup::<f64>::new((CellKind::Lstm, Extra::Keras), VARIANTS[1], 610, b, t, F, H);
    let fwd = sequence::forward(&lstm.spec, &lstm.weights(), &lstm.input(), lstm.options).unwrap();
    let seq = Array3::<f64>::zeros((b, t, H));
    let short = Array3::<f64>::zeros((b, t - 1, H));
    let last = Array2::<f64>::zeros((b, H));
    let wide = Array2::<f64>::zeros((b, H + 1));
    assert!(sequence::backward(
        &fwd.saved,
        OutputGrad::Sequence(seq.view()),
        &[],
        true,
        &Cancel::default()
    )
    .is_ok());
    let back = |d: OutputGrad<f64>, states: &[Option<ndarray::ArrayView2<f64>>]| {
        message(sequence::backward(
            &fwd.saved,
            d,
            states,
            true,
            &Cancel::default(),
        ))
    };
    assert_eq!(
        back(OutputGrad::Sequence(short.view()), &[]),
        "d_outputs: expected shape (2, 5, 3), received (2, 4, 3)"
    );
    assert_eq!(
        back(OutputGrad::Last(wide.view()), &[]),
        "d_last_output: expected shape (2, 3), received (2, 4)"
    );
    assert_eq!(
        back(OutputGrad::None, &[Some(last.view())]),
        "d_final_states: expected 2 arrays, received 1"
    );
    assert_eq!(
        back(OutputGrad::None, &[None, Some(wide.view())]),
        "d_final_states[1]: expected shape (2, 3), received (2, 4)"
    );
}

#[test]
fn bad_names_and_units_are_value_errors() {
    let units = CellSpec::new(
        CellKind::Lstm,
        0,
        Activation::Tanh,
        Activation::Sigmoid,
        true,
    );
    assert!(matches!(units, Err(Error::Value { .. })));
    assert_eq!(
        message(units),
        "units: expected a positive integer, received 0"
    );

    let act = message(Activation::from_name("tanhh"));
    assert!(
        act.starts_with("activation: expected one of linear, tanh, sigmoid"),
        "{act}"
    );
    assert!(act.ends_with(", received 'tanhh'"), "{act}");

    assert_eq!(
        message(MergeMode::from_name(Some("concatenate"))),
        "merge_mode: expected one of 'sum', 'mul', 'ave', 'concat', None, received 'concatenate'"
    );
    assert_eq!(MergeMode::from_name(None), Ok(MergeMode::None));
    assert_eq!(MergeMode::from_name(Some("ave")), Ok(MergeMode::Ave));
}

#[test]
fn shape_errors_are_the_shape_variant() {
    let s = Setup::<f64>::new(
        (CellKind::Gru { reset_after: true }, Extra::Keras),
        PLAIN,
        620,
        2,
        4,
        F,
        H,
    );
    let bad = Setup {
        kernel: Array2::zeros((F + 1, 9)),
        ..s
    };
    let err = sequence::forward(&bad.spec, &bad.weights(), &bad.input(), bad.options).unwrap_err();
    assert_eq!(
        err,
        Error::Shape {
            argument: "kernel".into(),
            expected: "(4, 9)".into(),
            received: "(5, 9)".into(),
        }
    );
}

/// `a` copied into column-major (Fortran) order: the same values, no axis of stride 1 but the
/// first.
fn fortran<A: Clone, D: Dimension>(a: &Array<A, D>) -> Array<A, D> {
    use ndarray::ShapeBuilder;
    let data: Vec<A> = a.t().iter().cloned().collect();
    Array::from_shape_vec(a.raw_dim().f(), data).expect("same length")
}

/// `base` with every array copied into column-major order, except the recurrent dropout unless
/// `recurrent_dropout_too`.
fn column_major(base: &Setup<f64>, recurrent_dropout_too: bool) -> Setup<f64> {
    Setup {
        x: fortran(&base.x),
        kernel: fortran(&base.kernel),
        recurrent_kernel: fortran(&base.recurrent_kernel),
        bias: base.bias.as_ref().map(fortran),
        states: base
            .states
            .as_ref()
            .map(|st| st.iter().map(fortran).collect()),
        mask: base.mask.as_ref().map(fortran),
        input_dropout: base.input_dropout.as_ref().map(fortran),
        recurrent_dropout: if recurrent_dropout_too {
            base.recurrent_dropout.as_ref().map(fortran)
        } else {
            base.recurrent_dropout.clone()
        },
        d_outputs: fortran(&base.d_outputs),
        d_last: fortran(&base.d_last),
        d_states: base.d_states.iter().map(fortran).collect(),
        ..base.clone()
    }
}

#[test]
fn any_memory_layout_gives_the_same_bits() {
    for base in Setup::<f64>::all(700, B, T, F, H) {
        let other = column_major(&base, true);
        assert!(!other.x.is_standard_layout() && !other.kernel.is_standard_layout());
        // See `gru_reset_before_takes_a_column_major_recurrent_dropout`.
        let other = if base.spec.kind == (CellKind::Gru { reset_after: false }) {
            column_major(&base, false)
        } else {
            other
        };
        assert_runs_identical(&base.label, &other.run(), &base.run());
    }
}

/// `SequenceInput` takes views of any strides, but GRU without `reset_after` reads each row of
/// the recurrent dropout multipliers as a slice (`sequence.rs`, forward and backward), so a
/// column-major `recurrent_dropout` (e.g. a transposed numpy array) panics with "contiguous
/// rows" instead of computing.
#[test]

fn gru_reset_before_takes_a_column_major_recurrent_dropout() {
    let base = Setup::<f64>::new(
        (CellKind::Gru { reset_after: false }, Extra::Keras),
        VARIANTS[2],
        710,
        B,
        T,
        F,
        H,
    );
    assert!(base.recurrent_dropout.is_some());
    let other = column_major(&base, true);
    assert_runs_identical(&base.label, &other.run(), &base.run());
}

#[test]
fn a_raised_cancel_flag_stops_forward_and_backward() {
    let lstm = Setup::<f64>::new(
        (CellKind::Lstm, Extra::Keras),
        VARIANTS[1],
        620,
        6,
        40,
        F,
        H,
    );
    let fwd = sequence::forward(&lstm.spec, &lstm.weights(), &lstm.input(), lstm.options).unwrap();
    let cancel = Cancel::new();
    let input = SequenceInput {
        cancel: cancel.clone(),
        ..lstm.input()
    };
    let not_yet = sequence::forward(&lstm.spec, &lstm.weights(), &input, lstm.options).unwrap();
    assert_eq!(not_yet.outputs, fwd.outputs);
    cancel.raise();
    let err = sequence::forward(&lstm.spec, &lstm.weights(), &input, lstm.options).unwrap_err();
    assert_eq!(err, Error::Cancelled);
    let d = Array3::<f64>::ones((6, 40, H));
    let err = sequence::backward(
        &fwd.saved,
        OutputGrad::Sequence(d.view()),
        &[],
        true,
        &cancel,
    );
    assert_eq!(err.unwrap_err(), Error::Cancelled);
}
