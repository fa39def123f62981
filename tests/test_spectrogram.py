"""STFTSpectrogram against Keras 3's (JAX backend): every mode, windows, scalings, framings, FFT
sizes, data formats and `expand_dims`; the Fourier kernels it initialises, forward values and the
gradients of the kernels and signals; configs, `.keras` files both ways and bad arguments. The
kernels are checked against numpy's FFT too."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from keras_twins import assert_same_config, assert_twins_agree  # noqa: E402
from rnnkit import layers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


MODES = ["log", "magnitude", "psd", "real", "imag", "angle", "stft"]


@pytest.mark.parametrize("seed", range(14))
def test_stft_spectrogram_matches_keras(keras, seed):
    rng = np.random.default_rng(300 + seed)
    frame_length = int(rng.integers(2, 17))
    kwargs = {
        "mode": MODES[seed % len(MODES)],
        "frame_length": frame_length,
        "window": [None, "hann", "hamming", "blackman", "boxcar"][rng.integers(5)],
        "periodic": bool(rng.integers(2)),
        "scaling": ["density", "spectrum", None][rng.integers(3)],
        "padding": ["valid", "same"][rng.integers(2)],
        "expand_dims": bool(rng.integers(2)),
        "data_format": ["channels_last", "channels_first"][(seed // 7) % 2],
    }
    if rng.integers(2):
        kwargs["frame_step"] = int(rng.integers(1, frame_length + 1))
    if rng.integers(2):
        kwargs["fft_length"] = 2 ** int(np.ceil(np.log2(frame_length))) * int(rng.integers(1, 3))
    channels, steps = int(rng.integers(1, 4)), int(rng.integers(frame_length, 40))
    shape = (2, steps, channels) if kwargs["data_format"] == "channels_last" else (2, channels, steps)
    theirs, ours = keras.layers.STFTSpectrogram(**kwargs), layers.STFTSpectrogram(**kwargs)
    theirs.build(shape)
    ours.build(shape)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    # Keras computes the basis in float32, rnnkit in float64: they agree to float32's precision.
    for mine, keras_weight in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, keras_weight, rtol=1e-5, atol=1e-5)
    ours.set_weights(theirs.get_weights())
    x = rng.normal(size=shape).astype("float32")
    assert_twins_agree(theirs, ours, (x,), rng=rng, rtol=2e-4, atol=2e-4)
    assert_same_config(ours, theirs)
    assert ours.compute_output_shape(shape) == tuple(theirs.compute_output_shape(shape)) == ours(x).shape


def test_kernels_give_numpy_fft():
    """With a boxcar window and no scaling, "stft" is numpy's rfft of each frame."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 32, 1)).astype("float32")
    layer = layers.STFTSpectrogram(mode="stft", frame_length=8, frame_step=8, window=None, scaling=None)
    out = np.asarray(layer(x))[0]
    frames = x[0, :, 0].reshape(4, 8)
    want = np.fft.rfft(frames, axis=-1)
    np.testing.assert_allclose(out[:, :5], want.real, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 5:], want.imag, rtol=1e-5, atol=1e-5)


def test_keras_files_move_both_ways(keras, tmp_path):
    inp = keras.Input((64, 1))
    h = keras.layers.STFTSpectrogram(frame_length=16, frame_step=8, fft_length=32)(inp)
    theirs = keras.Model(inp, keras.layers.LSTM(3)(h))
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(2).normal(size=(2, 64, 1)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    ours.save(tmp_path / "rnnkit.keras")
    back = keras.models.load_model(tmp_path / "rnnkit.keras")
    np.testing.assert_allclose(back.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frame_step": 300}, "`frame_step` should be a positive integer not greater than `frame_length`"),
        ({"frame_step": 0}, "`frame_step`"),
        ({"fft_length": 128}, "`fft_length` should be not less than `frame_length`"),
        ({"mode": "power"}, "Output mode is invalid"),
        ({"scaling": "energy"}, "Scaling is invalid"),
        ({"padding": "causal"}, "Padding is invalid"),
        ({"window": "kaiser"}, "window: expected one of"),
        ({"window": [1.0, 2.0]}, r"The shape of `window` must be equal to \[frame_length\]"),
        ({"frame_length": 0}, "frame_length"),
        ({"data_format": "channels_middle"}, "data_format"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layers.STFTSpectrogram(**kwargs)


def test_bad_inputs_raise():
    with pytest.warns(UserWarning, match="power of two"):
        layers.STFTSpectrogram(frame_length=8, fft_length=12)
    with pytest.raises(ValueError, match="expected ndim=3, found ndim=2"):
        layers.STFTSpectrogram(frame_length=8)(np.ones((2, 64), "float32"))


def test_ops_arctan2_matches_keras_with_gradients(keras):
    import jax

    rng = np.random.default_rng(4)
    y, x = rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")
    np.testing.assert_allclose(np.asarray(rk.ops.arctan2(y, x)), np.asarray(keras.ops.arctan2(y, x)), rtol=1e-6)
    ty, tx = rk.Variable(y), rk.Variable(x)
    with rk.GradientTape() as tape:
        loss = rk.ops.sum(rk.ops.arctan2(ty, tx) * y)
    want = jax.grad(lambda a, b: (keras.ops.arctan2(a, b) * y).sum(), argnums=(0, 1))(y, x)
    for got, expected in zip(tape.gradient(loss, [ty, tx]), want):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-6)


MEL_CASES = [
    ({}, (2, 4000)),
    ({"fft_length": 512, "sequence_stride": 160, "sequence_length": 400, "num_mel_bins": 40}, (3, 1600)),
    ({"fft_length": 256, "sequence_stride": 100, "window": "hamming", "power_to_db": False, "mag_exp": 1.0}, (1000,)),
    ({"fft_length": 64, "sequence_stride": 16, "window": None, "num_mel_bins": 8, "max_freq": 3000}, (2, 300)),
    ({"fft_length": 128, "sequence_stride": 64, "top_db": 20.0, "ref_power": 5.0, "min_freq": 100.0}, (2, 500)),
]


@pytest.mark.parametrize("kwargs, shape", MEL_CASES)
def test_mel_spectrogram_matches_keras(keras, kwargs, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.normal(size=shape).astype("float32")
    theirs, ours = keras.layers.MelSpectrogram(**kwargs), layers.MelSpectrogram(**kwargs)
    want, got = np.asarray(theirs(x)), np.asarray(ours(x))
    assert got.shape == want.shape == ours.compute_output_shape(shape)
    assert got.dtype == np.float32
    # Keras computes in float32 (decibels then differ by about 1e-5 dB), rnnkit in float64.
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 if ours.power_to_db else 1e-4)
    assert_same_config(ours, theirs)


def test_mel_filter_bank_and_a_tone():
    """A 1 kHz tone peaks in the mel band around 1 kHz."""
    rate = 16000
    t = np.arange(rate // 4) / rate
    tone = np.sin(2 * np.pi * 1000.0 * t).astype("float32")
    layer = layers.MelSpectrogram(fft_length=1024, sequence_stride=256, num_mel_bins=40, sampling_rate=rate)
    out = np.asarray(layer(tone))
    edges = np.linspace(1127 * np.log(1 + 20 / 700), 1127 * np.log(1 + 8000 / 700), 42)
    centers = 700 * (np.exp(edges[1:-1] / 1127) - 1)
    assert abs(centers[int(np.argmax(out[:, out.shape[1] // 2]))] - 1000) < 100


def test_mel_spectrogram_in_a_model_and_its_refusals(keras, tmp_path):
    inp = keras.Input((800,))
    h = keras.layers.MelSpectrogram(fft_length=128, sequence_stride=64, num_mel_bins=16)(inp)
    theirs = keras.Model(inp, keras.layers.GRU(2)(keras.layers.Permute((2, 1))(h)))
    theirs.save(tmp_path / "keras.keras")
    x = np.random.default_rng(1).normal(size=(2, 800)).astype("float32")
    ours = rk.models.load_model(tmp_path / "keras.keras")
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), rtol=1e-4, atol=1e-4)
    signal = rk.Variable(x)
    with rk.GradientTape() as tape, pytest.raises(ValueError, match="not differentiable"):
        tape.watch(signal)
        layers.MelSpectrogram(fft_length=128)(signal)
    with pytest.raises(ValueError, match="`fft_length` must be greater than or equal to `sequence_length`"):
        layers.MelSpectrogram(fft_length=128, sequence_length=256)
    with pytest.raises(ValueError, match='must be one of `"hann"`, `"hamming"`'):
        layers.MelSpectrogram(window="blackman")
    with pytest.raises(ValueError, match="expected max_ndim=2, found ndim=3"):
        layers.MelSpectrogram(fft_length=16)(np.ones((1, 2, 64), "float32"))
