"""Tests of rnnkit.optimizers: trajectories, schedules and configs against Keras 3's optimizers."""

import os

# Keras is imported once per process and its numpy backend cannot be assumed to agree with the
# other modules' choice: test_keras_parity.py needs JAX, so every module asks for JAX.
os.environ.setdefault("KERAS_BACKEND", "jax")

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit import constraints, optimizers  # noqa: E402
from rnnkit.optimizers import schedules  # noqa: E402

# Keras 3.15's Variable.numpy() trips numpy 2's `__array__(copy=...)` deprecation on JAX.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


_rng = np.random.default_rng(0)
# A quadratic bowl 0.5 * sum(curvature * (w - centre)**2) per variable: the gradient is
# curvature * (w - centre). Two variables, so that global_clipnorm couples them.
INITIAL = [_rng.normal(size=(3, 2)).astype(np.float32), _rng.normal(size=(2,)).astype(np.float32)]
CENTRES = [_rng.normal(size=(3, 2)).astype(np.float32), _rng.normal(size=(2,)).astype(np.float32)]
CURVATURES = [_rng.uniform(0.5, 4.0, size=(3, 2)).astype(np.float32), np.array([0.1, 8.0], np.float32)]
NAMES = ["kernel", "bias"]
STEPS = 6


def _gradients(variables):
    return [c * (np.asarray(v.value) - m) for v, m, c in zip(variables, CENTRES, CURVATURES)]


def _schedule(module, spec):
    """Builds the learning-rate schedule `("ClassName", kwargs)` from `module`, else returns `spec`."""
    if isinstance(spec, tuple):
        name, kwargs = spec
        return getattr(module, name)(**kwargs)
    return spec


def _pair(keras, name, kwargs):
    ours = getattr(optimizers, name)(**{k: _schedule(schedules, v) for k, v in kwargs.items()})
    theirs = getattr(keras.optimizers, name)(**{k: _schedule(keras.optimizers.schedules, v) for k, v in kwargs.items()})
    return ours, theirs


def _exponential(**kwargs):
    return "ExponentialDecay", kwargs


def _cosine(**kwargs):
    return "CosineDecay", kwargs


OPTIMIZER_CASES = [
    ("SGD", {}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.7, "nesterov": True}),
    ("SGD", {"learning_rate": 0.1, "clipnorm": 0.5}),
    ("SGD", {"learning_rate": 0.1, "clipvalue": 0.2}),
    ("SGD", {"learning_rate": 0.1, "global_clipnorm": 0.3}),
    ("SGD", {"learning_rate": 0.1, "weight_decay": 0.5}),
    ("SGD", {"learning_rate": _exponential(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5)}),
    (
        "SGD",
        {
            "learning_rate": _exponential(initial_learning_rate=0.2, decay_steps=2, decay_rate=0.3, staircase=True),
            "momentum": 0.5,
        },
    ),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "gradient_accumulation_steps": 3}),
    ("SGD", {"learning_rate": 0.1, "use_ema": True, "ema_momentum": 0.8}),
    ("SGD", {"learning_rate": 0.1, "use_ema": True, "ema_overwrite_frequency": 2}),
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.05, "amsgrad": True}),
    ("Adam", {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3}),
    ("Adam", {"learning_rate": 0.1, "global_clipnorm": 1.0, "weight_decay": 0.1}),
    ("Adam", {"learning_rate": 0.1, "loss_scale_factor": 128.0}),
    ("Adam", {"learning_rate": 0.1, "gradient_accumulation_steps": 2}),
    ("Adam", {"learning_rate": _cosine(initial_learning_rate=0.1, decay_steps=4, alpha=0.1)}),
    ("AdamW", {}),
    ("AdamW", {"learning_rate": 0.05, "weight_decay": 0.2, "amsgrad": True, "clipvalue": 0.5}),
    ("RMSprop", {}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.9}),
    ("RMSprop", {"learning_rate": 0.01, "centered": True}),
    ("RMSprop", {"learning_rate": 0.01, "rho": 0.5, "momentum": 0.5, "centered": True, "clipnorm": 1.0}),
    (
        "RMSprop",
        {"learning_rate": _cosine(initial_learning_rate=0.001, decay_steps=3, warmup_target=0.01, warmup_steps=2)},
    ),
    ("Adagrad", {}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "epsilon": 1e-3, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("name, kwargs", OPTIMIZER_CASES, ids=[f"{n}{k}" for n, k in OPTIMIZER_CASES])
def test_trajectory_matches_keras(keras, name, kwargs):
    ours, theirs = _pair(keras, name, kwargs)
    our_vars = [rk.Variable(x, name=n) for x, n in zip(INITIAL, NAMES)]
    their_vars = [keras.Variable(x, name=n) for x, n in zip(INITIAL, NAMES)]
    for step in range(STEPS):
        ours.apply_gradients(zip(_gradients(our_vars), our_vars))
        theirs.apply_gradients(zip(_gradients(their_vars), their_vars))
        for mine, reference in zip(our_vars, their_vars):
            assert mine.dtype == np.float32
            mine, reference = np.asarray(mine), np.asarray(reference.value)
            np.testing.assert_allclose(mine, reference, rtol=1e-5, atol=1e-6, err_msg=f"step {step}")
    their_rate = keras.ops.convert_to_numpy(theirs.learning_rate)
    np.testing.assert_allclose(float(ours.learning_rate), float(their_rate), rtol=1e-6)
    assert int(ours.iterations) == int(keras.ops.convert_to_numpy(theirs.iterations))
    assert [v.shape for v in ours.variables] == [tuple(v.shape) for v in theirs.variables]
    if kwargs.get("use_ema"):
        ours.finalize_variable_values(our_vars)
        theirs.finalize_variable_values(their_vars)
        for mine, reference in zip(our_vars, their_vars):
            np.testing.assert_allclose(np.asarray(mine), np.asarray(reference.value), rtol=1e-5, atol=1e-6)


def test_weight_decay_exclusions_match_keras(keras):
    ours, theirs = _pair(keras, "AdamW", {"learning_rate": 0.1, "weight_decay": 0.5})
    our_vars = [rk.Variable(x, name=n) for x, n in zip(INITIAL, NAMES)]
    their_vars = [keras.Variable(x, name=n) for x, n in zip(INITIAL, NAMES)]
    ours.exclude_from_weight_decay(var_names=["bias"])
    theirs.exclude_from_weight_decay(var_names=["bias"])
    for _ in range(3):
        ours.apply(_gradients(our_vars), our_vars)
        theirs.apply(_gradients(their_vars), their_vars)
    for mine, reference in zip(our_vars, their_vars):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(reference.value), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="before the optimizer is built"):
        ours.exclude_from_weight_decay(var_list=our_vars)


@pytest.mark.parametrize(
    "ours, theirs",
    [(constraints.NonNeg(), "NonNeg"), (constraints.MaxNorm(0.5), "MaxNorm")],
    ids=["NonNeg", "MaxNorm"],
)
def test_constraints_apply_after_each_update_as_in_keras(keras, ours, theirs):
    keras_constraint = getattr(keras.constraints, theirs)(**ours.get_config())
    our_vars = [rk.Variable(x) for x in INITIAL]
    their_vars = [keras.Variable(x) for x in INITIAL]
    their_vars[0].constraint = keras_constraint  # keras.Variable(constraint=...) drops it in Keras 3.15
    our_opt, their_opt = optimizers.SGD(0.3, momentum=0.5), keras.optimizers.SGD(0.3, momentum=0.5)
    constrained = {id(our_vars[0]): ours, id(our_vars[1]): None}
    for _ in range(4):
        our_opt.apply_gradients(zip(_gradients(our_vars), our_vars), constraints=constrained)
        their_opt.apply_gradients(zip(_gradients(their_vars), their_vars))
    for mine, reference in zip(our_vars, their_vars):
        np.testing.assert_allclose(np.asarray(mine), np.asarray(reference.value), rtol=1e-5, atol=1e-6)


def test_none_gradients_are_skipped_with_a_warning(keras):
    our_vars = [rk.Variable(x) for x in INITIAL]
    their_vars = [keras.Variable(x) for x in INITIAL]
    ours, theirs = optimizers.Adam(0.1), keras.optimizers.Adam(0.1)
    for _ in range(3):
        with pytest.warns(UserWarning, match="Gradients do not exist"):
            ours.apply([_gradients(our_vars)[0], None], our_vars)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs.apply([_gradients(their_vars)[0], None], their_vars)
    np.testing.assert_array_equal(np.asarray(our_vars[1]), INITIAL[1])
    np.testing.assert_allclose(np.asarray(our_vars[0]), np.asarray(their_vars[0].value), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="No gradients"):
        ours.apply([None, None], our_vars)


def test_apply_checks_its_variables():
    variables = [rk.Variable(x) for x in INITIAL]
    optimizer = optimizers.SGD()
    with pytest.raises(ValueError, match="build"):
        optimizer.apply(_gradients(variables))
    optimizer.apply(_gradients(variables), variables)
    optimizer.apply(_gradients(variables))  # the variables it was built with
    assert int(optimizer.iterations) == 2
    with pytest.raises(ValueError, match="Unknown variable"):
        optimizer.apply([np.ones(2, np.float32)], [rk.Variable(np.zeros(2, np.float32))])
    optimizer.apply([], [])  # no gradients: nothing happens
    assert int(optimizer.iterations) == 2


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_updates_keep_the_variable_dtype(name):
    variables = [rk.Variable(x.astype(np.float64)) for x in INITIAL]
    reference = [rk.Variable(x) for x in INITIAL]
    ours, ours32 = getattr(optimizers, name)(0.1), getattr(optimizers, name)(0.1)
    for _ in range(3):
        ours.apply(_gradients(variables), variables)
        ours32.apply(_gradients(reference), reference)
    for variable, single in zip(variables, reference):
        assert variable.dtype == np.float64 and all(v.dtype == np.float64 for v in ours.variables[2:])
        np.testing.assert_allclose(np.asarray(variable), np.asarray(single), rtol=1e-4, atol=1e-5)


def test_gradients_from_a_tape_train_a_variable():
    w = rk.Variable(np.array([3.0, -2.0]))
    optimizer = optimizers.get("adam")
    optimizer.learning_rate = 0.1
    for _ in range(200):
        with rk.GradientTape() as tape:
            loss = rk.ops.sum(rk.ops.square(w - np.array([1.0, 0.5])))
        optimizer.apply_gradients(zip(tape.gradient([loss], [w]), [w]))
    np.testing.assert_allclose(np.asarray(w), [1.0, 0.5], atol=1e-2)


# Schedules


SCHEDULE_CASES = [
    _exponential(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.5),
    _exponential(initial_learning_rate=0.01, decay_steps=4, decay_rate=0.96, staircase=True),
    _cosine(initial_learning_rate=0.1, decay_steps=7),
    _cosine(initial_learning_rate=0.1, decay_steps=5, alpha=0.2),
    _cosine(initial_learning_rate=0.0, decay_steps=5, warmup_target=0.1, warmup_steps=3),
    _cosine(initial_learning_rate=0.01, decay_steps=4, alpha=0.1, warmup_target=0.2, warmup_steps=2, name="cd"),
]


@pytest.mark.parametrize("name, kwargs", SCHEDULE_CASES, ids=[f"{n}{k}" for n, k in SCHEDULE_CASES])
def test_schedules_match_keras(keras, name, kwargs):
    ours, theirs = getattr(schedules, name)(**kwargs), getattr(keras.optimizers.schedules, name)(**kwargs)
    for step in range(12):
        value = ours(step)
        assert value.dtype == np.float32
        reference = keras.ops.convert_to_numpy(theirs(step))
        np.testing.assert_allclose(value, reference, rtol=1e-6, atol=1e-9, err_msg=f"step {step}")
    assert ours.get_config() == theirs.get_config()
    assert schedules.serialize(ours) == keras.optimizers.schedules.serialize(theirs)
    assert schedules.deserialize(schedules.serialize(ours)).get_config() == ours.get_config()


def test_schedules_reject_nonpositive_decay_steps():
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="decay_steps"):
        schedules.CosineDecay(0.1, -1)


# Learning rate, configs, get


def test_learning_rate_is_settable_unless_scheduled():
    optimizer = optimizers.SGD(learning_rate=0.5)
    assert isinstance(optimizer.learning_rate, rk.Variable) and optimizer.learning_rate.dtype == np.float32
    optimizer.learning_rate = 0.25
    assert float(optimizer.learning_rate) == 0.25 and optimizer.variables[1] is optimizer.learning_rate
    optimizer.learning_rate = schedules.ExponentialDecay(0.1, 1, 0.5)
    assert len(optimizer.variables) == 1  # the float32 rate variable is gone
    with pytest.raises(TypeError, match="not settable"):
        optimizer.learning_rate = 0.1
    assert float(optimizers.Adam(learning_rate=lambda: 0.3).learning_rate) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate="fast")


@pytest.mark.parametrize("name, kwargs", OPTIMIZER_CASES, ids=[f"{n}{k}" for n, k in OPTIMIZER_CASES])
def test_configs_match_keras(keras, name, kwargs):
    ours, theirs = _pair(keras, name, {**kwargs, "name": "opt"})
    assert ours.get_config() == theirs.get_config()
    rebuilt = getattr(optimizers, name).from_config(theirs.get_config())
    assert rebuilt.get_config() == ours.get_config()
    assert optimizers.deserialize(optimizers.serialize(ours)).get_config() == ours.get_config()
    assert optimizers.serialize(ours)["class_name"] == name


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(beta1=0.9)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.Adam(gradient_accumulation_steps=1)


@pytest.mark.parametrize(
    "identifier, cls",
    [
        ("sgd", optimizers.SGD),
        ("adam", optimizers.Adam),
        ("adamw", optimizers.AdamW),
        ("rmsprop", optimizers.RMSprop),
        ("adagrad", optimizers.Adagrad),
        ("Adam", optimizers.Adam),
        ("RMSprop", optimizers.RMSprop),
        ({"class_name": "SGD", "config": {"momentum": 0.9}}, optimizers.SGD),
    ],
)
def test_get_resolves_names_in_any_case(identifier, cls):
    optimizer = optimizers.get(identifier)
    assert type(optimizer) is cls


def test_get_passes_instances_and_rejects_the_rest():
    optimizer = optimizers.RMSprop()
    assert optimizers.get(optimizer) is optimizer and optimizers.get(None) is None
    assert optimizers.get({"class_name": "SGD", "config": {"momentum": 0.9}}).momentum == 0.9
    with pytest.raises(ValueError, match="NoSuchOptimizer"):
        optimizers.get("NoSuchOptimizer")
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier"):
        optimizers.get(optimizers.Adam)


def _per_variable(cls):
    """`cls` through its numpy `update_step`, one variable at a time (a subclass that overrides
    `update_step` opts out of the fused update)."""

    class PerVariable(cls):
        def update_step(self, gradient, variable, learning_rate):
            super().update_step(gradient, variable, learning_rate)

    return PerVariable


FUSED_CASES = [
    ("Adam", {}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.1}),
    ("Adam", {"epsilon": 0.5, "beta_1": 0.5}),
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.5, "nesterov": True, "weight_decay": 0.1}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.9}),
    ("RMSprop", {"centered": True, "rho": 0.5}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "epsilon": 0.1, "weight_decay": 0.1}),
    ("Adagrad", {}),
    ("Adagrad", {"initial_accumulator_value": 0.5, "epsilon": 0.01}),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, kwargs", FUSED_CASES, ids=[f"{n}{k}" for n, k in FUSED_CASES])
def test_fused_updates_give_the_bits_of_the_per_variable_update(dtype, name, kwargs):
    rng = np.random.default_rng(3)
    shapes = [(3, 4), (4,), (2, 3, 5)]
    fused_vars = [rk.Variable(rng.standard_normal(s).astype(dtype)) for s in shapes]
    plain_vars = [rk.Variable(np.asarray(v).copy()) for v in fused_vars]
    cls = getattr(rk.optimizers, name)
    fused, plain = cls(0.01, **kwargs), _per_variable(cls)(0.01, **kwargs)
    for _ in range(4):
        grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
        fused.apply_gradients(zip(grads, fused_vars))
        plain.apply_gradients(zip(grads, plain_vars))
    for mine, reference in zip(fused_vars + fused.variables, plain_vars + plain.variables):
        assert np.asarray(mine).dtype == np.asarray(reference).dtype
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(reference))


def test_fused_updates_name_a_bad_argument():
    from rnnkit import _core

    w = np.zeros((2, 3), np.float32)
    constants = dict(alpha=0.1, one_minus_beta_1=0.1, one_minus_beta_2=0.001, epsilon=1e-7)
    with pytest.raises(ValueError, match=r"gradients: expected 1 arrays \(one per value\), received 2"):
        _core.adam_update([w], [w, w], [w], [w], None, **constants)
    with pytest.raises(ValueError, match=r"momentum: expected shape \(2, 3\), received \(3,\)"):
        _core.adam_update([w], [w], [np.zeros(3, np.float32)], [w], None, **constants)
    with pytest.raises(TypeError, match="velocities\\[0\\]: expected dtype float32, received float64"):
        _core.adam_update([w], [w], [w], [w.astype(np.float64)], None, **constants)
    with pytest.raises(ValueError, match=r"momentums: expected a list exactly when momentum is not 0"):
        _core.sgd_update([w], [w], None, learning_rate=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"gradient: expected shape \(2, 3\), received \(3,\)"):
        _core.sgd_update([w], [np.zeros(3, np.float32)], learning_rate=0.1)
    rms = dict(learning_rate=0.1, rho=0.9, epsilon=1e-7)
    with pytest.raises(ValueError, match=r"momentums: expected a list exactly when momentum is not 0"):
        _core.rmsprop_update([w], [w], [w], [w], **rms)
    with pytest.raises(ValueError, match=r"average: expected shape \(2, 3\), received \(3,\)"):
        _core.rmsprop_update([w], [w], [w], None, [np.zeros(3, np.float32)], **rms)
    with pytest.raises(ValueError, match=r"accumulators: expected 1 arrays \(one per value\), received 0"):
        _core.adagrad_update([w], [w], [], learning_rate=0.1, epsilon=1e-7)
