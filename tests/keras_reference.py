"""What the two Keras parity modules share: Keras on JAX (or a skip), JAX's 64-bit switch, the
tolerance check, and the one known Keras-on-JAX difference in masked outputs."""

import functools
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax = pytest.importorskip("jax", reason="the Keras parity tests need jax (pip install 'jax[cpu]')")
keras = pytest.importorskip("keras", reason="the Keras parity tests need keras>=3 (pip install keras)")
if keras.backend.backend() != "jax":
    pytest.skip(
        f"the Keras parity tests need the JAX backend of Keras, got KERAS_BACKEND={keras.backend.backend()!r}",
        allow_module_level=True,
    )

MERGE_MODES = ["concat", "sum", "mul", "ave", None]
# "gru" is GRU(reset_after=True), "gru_before" GRU(reset_after=False).
KINDS = ["simple_rnn", "gru", "gru_before", "lstm"]


def jax_x64(enabled):
    """Runs a test (each hypothesis example) with JAX's 64-bit mode on or off.

    float64 Keras layers need it on (else their variables become float32). float32 layers need it
    off: with it on, Keras's JAX GRU fast path (`gru()` in keras/src/backend/jax/rnn.py) makes its
    missing biases with `jnp.zeros(3 * units)`, which is then float64, and a float32 GRU without
    bias fails in lax.scan (float32 carry in, float64 out). A context, not the global flag, so no
    other test module sees it.
    """

    def decorate(test):
        @functools.wraps(test)
        def run(*args, **kwargs):
            with jax.enable_x64(enabled):
                return test(*args, **kwargs)

        return run

    return decorate


def assert_close(actual, expected, tol, what, keep=None):
    """max |actual - expected| <= tol * max(1, max |expected|), over the entries where `keep` is True."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if keep is not None:
        keep = np.broadcast_to(keep, expected.shape)
        actual, expected = actual[keep], expected[keep]
    if expected.size == 0:
        return
    assert np.all(np.isfinite(expected)), f"{what}: Keras produced non-finite values"
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(actual - expected)))
    assert err <= tol * scale, f"{what}: max abs error {err:.3e} > {tol:.0e} * {scale:.3g}"


def leading_masked(mask, go_backwards):
    """(B, T) in processing order: True where this and every earlier processed step are masked."""
    processed = mask[:, ::-1] if go_backwards else mask
    return np.logical_and.accumulate(~processed, axis=1)


def jax_h0_quirk_applies(cfg):
    """Whether Keras-JAX's scan loop outputs h0 (TF: 0) before a row's first unmasked step: with a
    mask, an initial state, no `zero_output_for_mask` and no unrolling."""
    return (
        cfg["mask"] is not None
        and cfg["initial_state"]
        and not cfg["zero_output_for_mask"]
        and not cfg.get("unroll", False)
    )
