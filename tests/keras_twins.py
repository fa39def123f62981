"""Helpers for comparing an rnnkit layer with its Keras 3 twin (JAX backend): the same weights, the
same inputs, forward values and the gradients of `sum(output * R)` with respect to the trainable
weights and the float inputs (Keras's through `jax.grad` of `stateless_call`, ours through the tape).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before anything imports keras

import numpy as np  # noqa: E402

import rnnkit as rk  # noqa: E402


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def keras_outputs_and_grads(layer, args, kwargs, cotangents):
    """Keras's outputs and gradients (trainable weights, then the float leaves of `args`)."""
    import jax
    import jax.numpy as jnp

    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(trainable, args):
        out, _ = layer.stateless_call(trainable, non_trainable, *args, **kwargs)
        return sum(jnp.sum(o * r) for o, r in zip(as_list(out), cotangents)), out

    trainable = [v.value for v in layer.trainable_variables]
    jargs = jax.tree_util.tree_map(jnp.asarray, args)
    (d_weights, d_args), out = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(trainable, jargs)
    return (
        [np.asarray(o) for o in as_list(out)],
        [np.asarray(g) for g in d_weights],
        [np.asarray(g) for g in jax.tree_util.tree_leaves(d_args)],
    )


def rnnkit_outputs_and_grads(layer, args, kwargs, cotangents):
    """Our outputs and gradients, in the order of `keras_outputs_and_grads`."""
    tensors = rk.tree.map_structure(lambda a: rk.Tensor(np.asarray(a)), args)
    leaves = rk.tree.flatten(tensors)
    with rk.GradientTape() as tape:
        tape.watch(leaves)
        out = layer(*tensors, **kwargs)
        loss = sum(rk.ops.sum(o * r) for o, r in zip(as_list(out), cotangents))
    grads = tape.gradient(loss, [*layer.trainable_weights, *leaves])
    n = len(layer.trainable_weights)
    zero = [
        np.zeros(np.shape(v)) if g is None else np.asarray(g)
        for v, g in zip([*layer.trainable_weights, *leaves], grads)
    ]
    return [np.asarray(o) for o in as_list(out)], zero[:n], zero[n:]


def assert_twins_agree(theirs, ours, args, kwargs=None, keras_kwargs=None, rtol=1e-5, atol=1e-5, keep=None, rng=None):
    """Forward values and gradients of both layers agree (on the positions `keep` selects)."""
    kwargs = kwargs or {}
    rng = rng or np.random.default_rng(0)
    k_out = theirs(*args, **(kwargs if keras_kwargs is None else keras_kwargs))
    cotangents = [rng.normal(size=np.shape(o)).astype("float32") for o in as_list(k_out)]
    if keep is not None:
        cotangents[0] = cotangents[0] * keep
    k_vals, k_dw, k_dx = keras_outputs_and_grads(
        theirs, args, kwargs if keras_kwargs is None else keras_kwargs, cotangents
    )
    r_vals, r_dw, r_dx = rnnkit_outputs_and_grads(ours, args, kwargs, cotangents)
    assert len(k_vals) == len(r_vals)
    for i, (a, b) in enumerate(zip(r_vals, k_vals)):
        if i == 0 and keep is not None:
            a, b = a * keep, b * keep
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"output {i}")
    assert len(r_dw) == len(k_dw)
    for i, (a, b) in enumerate(zip(r_dw, k_dw)):
        np.testing.assert_allclose(a, b, rtol=10 * rtol, atol=10 * atol, err_msg=f"weight gradient {i}")
    for i, (a, b) in enumerate(zip(r_dx, k_dx)):
        np.testing.assert_allclose(a, b, rtol=10 * rtol, atol=10 * atol, err_msg=f"input gradient {i}")


def assert_same_config(ours, theirs):
    """Our config has Keras's keys (but the base ones) with equal values, and round-trips."""
    base = {"name", "trainable", "dtype"}
    mine, keras_config = ours.get_config(), theirs.get_config()
    assert (
        set(mine) - base
        == set(keras_config) - base - {"activity_regularizer"} | (set(mine) & {"activity_regularizer"}) - base
    )
    for key in set(mine) - base:
        want = keras_config[key]
        want = list(want) if isinstance(want, tuple) else want
        got = list(mine[key]) if isinstance(mine[key], tuple) else mine[key]
        assert got == want, key
    clone = type(ours).from_config(mine)
    assert clone.get_config() == mine
