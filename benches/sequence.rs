//! Criterion benchmarks of the fused sequence loop in f32 on rayon's global pool:
//! `sequence::forward` alone and forward + backward (gradient given for every step's output), for
//! LSTM at the guide's MNIST shape (B=64, T=28, F=28, H=64) and at B=64, T=100, F=H=512, and for
//! GRU (`reset_after`) at the MNIST shape.
//!
//! Besides criterion's report, one line per case gives the median time per iteration over the
//! measured samples and GFLOP/s, counting only the matrix products: 2·G·H·(F+H)·B·T FLOPs for a
//! forward pass (G = 4 gates for LSTM, 3 for GRU) and 3× that for forward + backward (the
//! backward pass has two products of the forward's size: the input/state gradients and the
//! weight gradients).
//!
//! Kept short (10 samples, brief warm-up and measurement) so that the whole run takes a minute
//! or two on a small machine: `cargo bench --no-default-features --bench sequence`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{cast, spec, OwnedWeights, Rng};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use ndarray::{Array2, Array3};
#[cfg(not(feature = "python"))]
use rnnkit::cpu::block_cache::BlockCache;
use rnnkit::{
    sequence, Cancel, CellKind, CellSpec, OutputGrad, SequenceInput, SequenceOptions, Weights,
};

const SAMPLES: usize = 10;

/// The allocator the Python extension installs, so the buffers are reused between iterations
/// as they are between calls from Python (with the `python` feature the library installs it).
#[cfg(not(feature = "python"))]
#[global_allocator]
static ALLOCATOR: BlockCache = BlockCache::new(512 << 20);

/// One benchmarked shape and cell.
struct Shape {
    name: &'static str,
    kind: CellKind,
    batch: usize,
    time: usize,
    features: usize,
    units: usize,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "lstm_mnist",
        kind: CellKind::Lstm,
        batch: 64,
        time: 28,
        features: 28,
        units: 64,
    },
    Shape {
        name: "gru_mnist",
        kind: CellKind::Gru { reset_after: true },
        batch: 64,
        time: 28,
        features: 28,
        units: 64,
    },
    Shape {
        name: "lstm_512",
        kind: CellKind::Lstm,
        batch: 64,
        time: 100,
        features: 512,
        units: 512,
    },
];

/// The f32 arrays of one case.
struct Data {
    spec: CellSpec,
    x: Array3<f32>,
    kernel: Array2<f32>,
    recurrent_kernel: Array2<f32>,
    bias: Option<Array2<f32>>,
    d_outputs: Array3<f32>,
}

impl Data {
    fn new(s: &Shape) -> Self {
        let mut rng = Rng::new(1);
        let spec = spec(s.kind, s.units, "tanh", "sigmoid", true);
        // Weights of Glorot-like scale keep the activations away from saturation.
        let scale = 1.0 / ((s.features + s.units) as f64).sqrt();
        let w = OwnedWeights::random(&mut rng, &spec, s.features, scale);
        Self {
            spec,
            x: cast(&rng.array((s.batch, s.time, s.features), 1.0)),
            kernel: cast(&w.kernel),
            recurrent_kernel: cast(&w.recurrent_kernel),
            bias: w.bias.as_ref().map(cast),
            d_outputs: cast(&rng.array((s.batch, s.time, s.units), 1.0)),
        }
    }

    fn forward(&self) -> rnnkit::Forward<f32> {
        let weights = Weights {
            kernel: self.kernel.view(),
            recurrent_kernel: self.recurrent_kernel.view(),
            bias: self.bias.as_ref().map(|b| b.view()),
            peephole: None,
            projection: None,
            layer_norm: None,
            cell_norm: None,
        };
        let input = SequenceInput::new(self.x.view());
        sequence::forward(&self.spec, &weights, &input, SequenceOptions::default())
            .expect("valid shapes")
    }

    /// Forward and backward, the input gradient included (as for a layer that is not first).
    fn forward_backward(&self) -> rnnkit::Gradients<f32> {
        let fwd = self.forward();
        sequence::backward(
            &fwd.saved,
            OutputGrad::Sequence(self.d_outputs.view()),
            &[],
            true,
            &Cancel::default(),
        )
        .expect("valid shapes")
    }
}

/// Times `routine` through criterion, recording each sample's time per iteration (warm-up
/// calls included; the last `SAMPLES` are the measured ones) into `record`.
fn timed<'a, O>(
    record: &'a mut Vec<f64>,
    mut routine: impl FnMut() -> O + 'a,
) -> impl FnMut(&mut criterion::Bencher) + 'a {
    move |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(routine());
            }
            let elapsed = start.elapsed();
            record.push(elapsed.as_secs_f64() / iters.max(1) as f64);
            elapsed
        });
    }
}

/// The median of the measured samples, in seconds; `None` when the case did not run (filtered).
fn median(record: &[f64]) -> Option<f64> {
    let mut last = record[record.len().saturating_sub(SAMPLES)..].to_vec();
    if last.is_empty() {
        return None;
    }
    last.sort_by(f64::total_cmp);
    let n = last.len();
    Some(if n % 2 == 1 {
        last[n / 2]
    } else {
        (last[n / 2 - 1] + last[n / 2]) / 2.0
    })
}

fn bench_sequence(c: &mut Criterion) {
    let mut summary = Vec::new();
    for shape in &SHAPES {
        let data = Data::new(shape);
        let gates = data.spec.gates() as f64;
        let (b, t, f, h) = (
            shape.batch as f64,
            shape.time as f64,
            shape.features as f64,
            shape.units as f64,
        );
        let forward_flops = 2.0 * gates * h * (f + h) * b * t;
        let dims = format!(
            "B={} T={} F={} H={}",
            shape.batch, shape.time, shape.features, shape.units
        );

        let mut group = c.benchmark_group(format!("sequence/{}", shape.name));
        group.sample_size(SAMPLES);
        if shape.units >= 512 {
            // Seconds per iteration: the same count in every sample instead of 1 + 2 + … + 10.
            group
                .sampling_mode(SamplingMode::Flat)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
        } else {
            group
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1));
        }
        let (mut fwd, mut both) = (Vec::new(), Vec::new());
        group.bench_function("forward", timed(&mut fwd, || data.forward()));
        group.bench_function(
            "forward_backward",
            timed(&mut both, || data.forward_backward()),
        );
        group.finish();

        for (what, record, flops) in [
            ("forward", &fwd, forward_flops),
            ("forward+backward", &both, 3.0 * forward_flops),
        ] {
            if let Some(secs) = median(record) {
                summary.push(format!(
                    "{:<10} {:<17} {dims:<26} median {:>10.3} ms  {:>7.2} GFLOP/s",
                    shape.name,
                    what,
                    secs * 1e3,
                    flops / secs / 1e9
                ));
            }
        }
    }
    println!(
        "\nf32, {} rayon threads; FLOPs = 2·G·H·(F+H)·B·T forward, 3× for forward+backward:",
        rayon::current_num_threads()
    );
    for line in summary {
        println!("{line}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().nresamples(10_000);
    targets = bench_sequence
}
criterion_main!(benches);
