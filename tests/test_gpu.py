"""The GPU path: kernels compile (CI, no GPU needed), device selection, and GPU-vs-CPU parity.

The parity tests run only where a GPU can be used and are skipped with the reason otherwise;
the compile test needs only NVRTC (the `nvidia-cuda-nvrtc` wheel of the test extras).
"""

import importlib.metadata
import os
import sys

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import _core, config

AVAILABLE, WHY = config.cuda_status()
needs_gpu = pytest.mark.skipif(not AVAILABLE, reason=f"no GPU: {WHY}")
no_gpu = pytest.mark.skipif(AVAILABLE, reason="a GPU is present")


def _has_pip_nvrtc():
    try:
        importlib.metadata.version("nvidia-cuda-nvrtc")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _has_pip_nvrtc(), reason="nvidia-cuda-nvrtc is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize("capability", [(8, 0), (9, 0)])
def test_every_kernel_compiles_with_nvrtc(capability):
    assert _core.compile_cuda_kernels(*capability) > 10_000


def test_an_unknown_device_is_a_value_error():
    with pytest.raises(ValueError, match="device: expected one of 'cpu', 'cuda', 'auto'.*received 'tpu'"):
        with rk.device("tpu"):
            pass
    with pytest.raises(ValueError, match="device: expected one of"):
        rk.layers.LSTM(3, device="npu")
    spec = _core.CellSpec("lstm", 2)
    w = [np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32), np.zeros(8, np.float32)]
    with pytest.raises(ValueError, match="device: expected 'cpu' or 'cuda', received 'gpu'"):
        _core.rnn_forward(spec, w, np.zeros((1, 2, 3), np.float32), device="gpu")


def test_cpu_is_always_listed_and_auto_runs_everywhere():
    assert config.list_devices()[0] == "CPU:0"
    assert ("GPU:0" in config.list_devices()) == AVAILABLE
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    layer = rk.layers.GRU(4)
    with rk.device("auto"):
        auto = layer(x).numpy()
    with rk.device("CPU:0"):
        cpu = layer(x).numpy()
    np.testing.assert_allclose(auto, cpu, rtol=1e-5, atol=1e-6)


@no_gpu
def test_without_a_gpu_cuda_says_why():
    with pytest.raises(RuntimeError, match="device\\('cuda'\\): no GPU can be used: .+Use 'cpu' or 'auto'"):
        with rk.device("cuda"):
            pass
    layer = rk.layers.LSTM(3, device="cuda")
    with pytest.raises(RuntimeError, match="no GPU can be used"):
        layer(np.zeros((1, 2, 3), np.float32))
    model = rk.Sequential([rk.layers.Dense(2)], device="cuda")
    with pytest.raises(RuntimeError, match="no GPU can be used"):
        model(np.zeros((1, 3), np.float32))
    spec = _core.CellSpec("lstm", 2)
    w = [np.zeros((3, 8), np.float32), np.zeros((2, 8), np.float32), np.zeros(8, np.float32)]
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        _core.rnn_forward(spec, w, np.zeros((1, 2, 3), np.float32), device="cuda")
    assert config.compute_device() == "cpu"


def test_cpu_blocks_compute_on_the_cpu():
    with rk.device("cpu"):
        assert config.compute_device() == "cpu"


def test_rnnkit_device_sets_the_default_outside_device_blocks(monkeypatch):
    monkeypatch.setenv("RNNKIT_DEVICE", "auto")
    assert config.current_device() == "auto"
    assert config.compute_device() == ("cuda" if AVAILABLE else "cpu")
    monkeypatch.setenv("RNNKIT_DEVICE", "CPU:0")
    assert config.current_device() == "cpu"
    with rk.device("auto"):
        assert config.current_device() == "auto"
    monkeypatch.setenv("RNNKIT_DEVICE", "tpu")
    with pytest.raises(ValueError, match="received 'tpu'"):
        config.current_device()


# --- parity on a GPU -----------------------------------------------------------------------------

ACTIVATIONS = _core.ACTIVATIONS


def _relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.linalg.norm(b)
    return np.linalg.norm(a - b) / scale if scale > 0 else np.linalg.norm(a)


def _close(gpu, cpu, what, exact=None):
    """GPU within 1e-5 relative of the CPU (float32); where float32 itself is off by more (the
    CPU's float32 against its float64, `exact`), within 4 times that."""
    assert np.asarray(gpu).shape == np.asarray(cpu).shape, what
    assert np.all(np.isfinite(gpu)), what
    tolerance = 1e-5 if exact is None else max(1e-5, 4 * _relative(cpu, exact))
    error = _relative(gpu, cpu)
    assert error < tolerance, f"{what}: relative error {error:.2e} (allowed {tolerance:.1e})"


def _case(
    rng,
    kind,
    reset_after=True,
    *,
    batch=5,
    time=7,
    features=6,
    units=8,
    activation="tanh",
    recurrent_activation="sigmoid",
    use_bias=True,
    mask=False,
    dropout=False,
    states=False,
):
    spec = _core.CellSpec(kind, units, activation, recurrent_activation, use_bias, reset_after)
    g = spec.gates
    # Glorot-like scales: larger weights make long sequences chaotic, where float32 itself
    # (CPU against float64) loses every digit.
    weights = [
        rng.normal(scale=features**-0.5, size=(features, g * units)).astype(np.float32),
        rng.normal(scale=units**-0.5, size=(units, g * units)).astype(np.float32),
        rng.normal(scale=0.5, size=spec.bias_shape).astype(np.float32) if use_bias else None,
    ]
    x = rng.normal(size=(batch, time, features)).astype(np.float32)
    kwargs = {}
    if mask:
        kwargs["mask"] = rng.random((batch, time)) < 0.7
    if dropout:
        kwargs["input_dropout"] = ((rng.random((g, batch, features)) < 0.8) / 0.8).astype(np.float32)
        kwargs["recurrent_dropout"] = ((rng.random((g, batch, units)) < 0.8) / 0.8).astype(np.float32)
    if states:
        kwargs["initial_states"] = [rng.normal(size=(batch, units)).astype(np.float32) for _ in range(spec.state_count)]
    return spec, weights, x, kwargs


def _as(dtype, value):
    if isinstance(value, list):
        return [_as(dtype, v) for v in value]
    if value is None or value.dtype == bool:
        return value
    return value.astype(dtype)


def _run(device, spec, weights, x, kwargs, options, rng_grads, dtype=np.float32):
    weights, x = _as(dtype, weights), _as(dtype, x)
    kwargs = {k: _as(dtype, v) for k, v in kwargs.items()}
    rng_grads = {k: _as(dtype, v) for k, v in rng_grads.items()}
    out, finals, saved = _core.rnn_forward(spec, weights, x, device=device, **kwargs, **options)
    d_final = rng_grads["states"]
    if options.get("return_sequences", True):
        grads = _core.rnn_backward(saved, d_outputs=rng_grads["outputs"], d_final_states=d_final)
    else:
        grads = _core.rnn_backward(saved, d_last_output=rng_grads["last"], d_final_states=d_final)
    return out, finals, grads


def _compare(spec, weights, x, kwargs, options, seed):
    rng = np.random.default_rng(seed)
    b, t, _ = x.shape
    rng_grads = {
        "outputs": rng.normal(size=(b, t, spec.units)).astype(np.float32),
        "last": rng.normal(size=(b, spec.units)).astype(np.float32),
        "states": [rng.normal(size=(b, spec.units)) for _ in range(spec.state_count)],
    }
    cpu = _run("cpu", spec, weights, x, kwargs, options, rng_grads)
    exact = _run("cpu", spec, weights, x, kwargs, options, rng_grads, np.float64)
    gpu = _run("cuda", spec, weights, x, kwargs, options, rng_grads)
    label = f"{spec!r} {sorted(kwargs)} {options}"
    _close(gpu[0], cpu[0], f"outputs of {label}", exact[0])
    for i, (g, c, e) in enumerate(zip(gpu[1], cpu[1], exact[1])):
        _close(g, c, f"final state {i} of {label}", e)
    names = ["dx", "d_kernel", "d_recurrent_kernel", "d_bias"]
    for name, g, c, e in zip(names, gpu[2][:4], cpu[2][:4], exact[2][:4]):
        if c is None:
            assert g is None, name
        else:
            _close(g, c, f"{name} of {label}", e)
    for i, (g, c, e) in enumerate(zip(gpu[2][4], cpu[2][4], exact[2][4])):
        _close(g, c, f"d_initial_state {i} of {label}", e)


CELLS = [("simple_rnn", True), ("gru", True), ("gru", False), ("lstm", True)]


@needs_gpu
@pytest.mark.parametrize("kind,reset_after", CELLS)
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("loop", ["persistent", "stepwise"])
def test_gpu_matches_cpu_over_sampled_options(kind, reset_after, seed, loop, monkeypatch):
    # Small recurrent kernels run in one persistent launch; RNNKIT_GPU_STEPWISE forces the
    # per-step launches that larger ones use.
    if loop == "stepwise":
        monkeypatch.setenv("RNNKIT_GPU_STEPWISE", "1")
    rng = np.random.default_rng(100 + seed)
    flags = dict(
        use_bias=bool(rng.integers(2)) or seed == 0,
        mask=seed % 2 == 1,
        dropout=seed % 3 == 2,
        states=bool(rng.integers(2)),
    )
    options = dict(
        go_backwards=bool(rng.integers(2)),
        zero_output_for_mask=bool(rng.integers(2)),
        return_sequences=seed % 4 != 3,
    )
    spec, weights, x, kwargs = _case(rng, kind, reset_after, **flags)
    _compare(spec, weights, x, kwargs, options, seed)


@needs_gpu
@pytest.mark.parametrize("kind,reset_after", CELLS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gpu_matches_cpu_for_every_activation(kind, reset_after, activation):
    rng = np.random.default_rng(len(activation))
    # Each name once as the activation and once as the gates' activation.
    for act, ract in [(activation, "sigmoid"), ("tanh", activation)]:
        if kind == "simple_rnn" and act == "tanh":
            continue
        spec, weights, x, kwargs = _case(
            rng, kind, reset_after, activation=act, recurrent_activation=ract, mask=True, time=5
        )
        if "exponential" in (act, ract):
            x = x[:, :2] * 0.2  # exp feeding back into exp overflows within a few steps
            kwargs["mask"] = kwargs["mask"][:, :2]
        _compare(spec, weights, x, kwargs, {"go_backwards": False}, 7)


@needs_gpu
@pytest.mark.parametrize("kind,units", [("lstm", 128), ("gru", 150), ("simple_rnn", 260)])
def test_gpu_matches_cpu_with_the_recurrent_kernel_partly_on_chip(kind, units):
    # On an H100 (227 KiB of shared memory per block) these keep 85-90% of the recurrent kernel
    # on chip and read the rest from L2 in the persistent loops.
    rng = np.random.default_rng(units)
    spec, weights, x, kwargs = _case(rng, kind, batch=6, time=9, features=16, units=units, mask=True, dropout=True)
    _compare(spec, weights, x, kwargs, {"go_backwards": True}, 3)


@needs_gpu
def test_gpu_matches_cpu_at_the_benchmark_shape():
    rng = np.random.default_rng(5)
    spec, weights, x, kwargs = _case(rng, "lstm", batch=64, time=100, features=512, units=512)
    _compare(spec, weights, x, kwargs, {}, 5)


@needs_gpu
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_gpu_matches_cpu(merge_mode):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4, 6, 5)).astype(np.float32)
    # No dropout here: each call would draw new masks (dropout is compared through the core above).
    layer = rk.layers.Bidirectional(rk.layers.GRU(7, return_sequences=True), merge_mode=merge_mode)
    mask = rng.random((4, 6)) < 0.8
    results = {}
    for device in ("cpu", "cuda"):
        with rk.device(device):
            with rk.GradientTape() as tape:
                out = layer(x, mask=mask, training=True)
                outs = out if isinstance(out, list) else [out]
                loss = sum(rk.ops.sum(o * o) for o in outs)
            results[device] = (
                [np.asarray(o) for o in outs],
                [np.asarray(g) for g in tape.gradient(loss, layer.trainable_weights)],
            )
    for g, c in zip(results["cuda"][0], results["cpu"][0]):
        _close(g, c, f"output ({merge_mode})")
    for w, g, c in zip(layer.trainable_weights, results["cuda"][1], results["cpu"][1]):
        _close(g, c, f"gradient of {w.name} ({merge_mode})")


@needs_gpu
def test_a_model_trained_on_the_gpu_runs_on_the_cpu():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 12, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    model = rk.Sequential([rk.Input((12, 8)), rk.layers.LSTM(16), rk.layers.Dense(3)])
    model.compile(optimizer="adam", loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True))
    with rk.device("cuda"):
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        on_gpu = model.predict(x, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    with rk.device("CPU:0"):
        on_cpu = model.predict(x, verbose=0)
    _close(on_gpu, on_cpu, "predictions")


def test_pip_cuda_libraries_are_preloaded_from_site_packages(tmp_path, monkeypatch):
    from rnnkit import _cuda_libraries

    # pip's two layouts: CUDA 13's shared nvidia/cu13/lib, and one folder per package.
    for folder, names in [
        ("nvidia/cu13/lib", ["libcublasLt.so.13", "libnvrtc-builtins.so.13.0", "libnvrtc.so.13", "libnvrtc.alt.so.13"]),
        ("nvidia/cublas/lib", ["libcublas.so.13", "libcublasLt.so.13"]),
    ]:
        (tmp_path / folder).mkdir(parents=True)
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")
    loaded = []
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(
        _cuda_libraries.ctypes, "CDLL", lambda path, mode=0: loaded.append(os.path.relpath(path, tmp_path))
    )
    _cuda_libraries.preload()
    # Each library once, from the first folder that has it (cuBLASLt from cu13, not cublas/);
    # within a folder cuBLASLt before cuBLAS and NVRTC's builtins before NVRTC; never NVRTC's
    # alternative build.
    assert loaded == [
        "nvidia/cu13/lib/libcublasLt.so.13",
        "nvidia/cu13/lib/libnvrtc-builtins.so.13.0",
        "nvidia/cu13/lib/libnvrtc.so.13",
        "nvidia/cublas/lib/libcublas.so.13",
    ]


@needs_gpu
@pytest.mark.parametrize(
    "make",
    [
        lambda: rk.layers.IndRNN(4),
        lambda: rk.layers.LSTM(4, peephole=True),
        lambda: rk.layers.LSTM(4, layer_norm=True),
        lambda: rk.layers.GRU(4, layer_norm=True),
    ],
)
def test_cells_the_gpu_does_not_run_are_refused_there_and_run_on_the_cpu_under_auto(make):
    """IndRNN, peepholes and layer normalisation have no GPU kernels yet: an explicit "cuda" is
    refused by name (never computed as another cell), "auto" runs them on the CPU."""
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    layer = make()
    with rk.device("cpu"):
        cpu = layer(x).numpy()
    with rk.device("auto"):
        np.testing.assert_array_equal(layer(x).numpy(), cpu)
    with pytest.raises(ValueError, match="spec: expected a cell the GPU kernels run .* which runs on the CPU only"):
        with rk.device("cuda"):
            layer(x)
