"""What `fit`, `evaluate` and `predict` take, compared with Keras 3 on the same data and weights:
iterables of batches (PyDataset-style objects, generators, tf.data- and torch-style loaders),
`steps_per_epoch`, `validation_*`, `class_weight`, `initial_epoch`, `verbose`, `return_dict`,
and the errors for arguments that cannot be honoured."""

import io
import re
import warnings

import numpy as np
import pytest

import rnnkit as rk
from keras_training import (
    Batches,
    assert_same_history,
    assert_same_weights,
    classification_data,
    keras,
    keras_batches,
    model_pair,
    regression_data,
)


def forever(x, y, batch_size=8):
    """An infinite generator of `(x, y)` batches, round and round the data."""
    while True:
        for i in range(0, len(x), batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]


# --- iterables of batches ---------------------------------------------------------------------


def test_pydataset_style_object_trains_as_keras_pydataset():
    x, y = regression_data(n=36)
    ours, theirs = model_pair()
    data = Batches(x, y, batch_size=8)
    h_ours = ours.fit(data, epochs=3, shuffle=False, verbose=0, validation_data=Batches(x[:20], y[:20], 6))
    h_theirs = theirs.fit(
        keras_batches(x, y, 8), epochs=3, shuffle=False, verbose=0, validation_data=keras_batches(x[:20], y[:20], 6)
    )
    assert_same_history(h_ours, h_theirs)
    assert_same_weights(ours, theirs)
    assert data.epochs_ended == 3  # on_epoch_end after every epoch
    assert ours.evaluate(data, verbose=0) == pytest.approx(theirs.evaluate(keras_batches(x, y, 8), verbose=0), rel=1e-5)
    np.testing.assert_allclose(
        ours.predict(Batches(x, batch_size=8), verbose=0),
        theirs.predict(keras_batches(x, batch_size=8), verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


def test_pydataset_with_sample_weights_and_shuffled_batch_order():
    x, y = regression_data(n=32)
    weights = np.linspace(0.0, 2.0, 32).astype("float32")
    ours, theirs = model_pair()
    h_ours = ours.fit(Batches(x, y, 8, weights), epochs=2, shuffle=False, verbose=0)
    h_theirs = theirs.fit(keras_batches(x, y, 8, weights), epochs=2, shuffle=False, verbose=0)
    assert_same_history(h_ours, h_theirs)
    # shuffle=True draws a new order of the batches each epoch.
    seen = []

    class Recording(Batches):
        def __getitem__(self, i):
            seen.append(i)
            return super().__getitem__(i)

    model, _ = model_pair()
    model.fit(Recording(x, y, 4), epochs=3, shuffle=True, verbose=0)
    orders = [seen[i : i + 8] for i in range(0, 24, 8)]
    assert all(sorted(order) == list(range(8)) for order in orders)
    assert len({tuple(order) for order in orders}) > 1


def test_generator_with_steps_per_epoch_matches_keras():
    x, y = regression_data(n=40)
    ours, theirs = model_pair()
    h_ours = ours.fit(forever(x, y), steps_per_epoch=3, epochs=4, verbose=0)
    h_theirs = theirs.fit(forever(x, y), steps_per_epoch=3, epochs=4, verbose=0)
    assert_same_history(h_ours, h_theirs)
    assert_same_weights(ours, theirs)


def test_steps_per_epoch_on_arrays_goes_on_where_the_last_epoch_stopped():
    # 5 batches per pass, 2 steps per epoch: epochs take batches 0-1, 2-3, 4 (ran out), 0-1.
    x, y = regression_data(n=40)
    ours, theirs = model_pair()
    with pytest.warns(UserWarning, match="ran out of data"):
        h_ours = ours.fit(x, y, batch_size=8, steps_per_epoch=2, epochs=4, shuffle=False, verbose=0)
    h_theirs = theirs.fit(x, y, batch_size=8, steps_per_epoch=2, epochs=4, shuffle=False, verbose=0)
    assert_same_history(h_ours, h_theirs)
    assert_same_weights(ours, theirs)
    # Without batch_size, steps_per_epoch sizes the batches (40 / 4 = 10), as Keras.
    ours, theirs = model_pair()
    h_ours = ours.fit(x, y, steps_per_epoch=4, epochs=2, shuffle=False, verbose=0)
    h_theirs = theirs.fit(x, y, steps_per_epoch=4, epochs=2, shuffle=False, verbose=0)
    assert_same_history(h_ours, h_theirs)


def test_a_finite_iterable_defines_the_epoch_and_a_spent_generator_stops_training():
    x, y = regression_data(n=32)

    class Loader:
        """A re-iterable loader with a length, as a torch DataLoader or a finite tf.data.Dataset."""

        def __iter__(self):
            return ((x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8))

        def __len__(self):
            return 4

    ours, theirs = model_pair()
    history = ours.fit(Loader(), epochs=3, shuffle=False, verbose=0)
    theirs_history = theirs.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    assert_same_history(history, theirs_history)
    # A generator is one pass: the second epoch finds nothing, training stops with a warning.
    model, _ = model_pair()
    one_pass = ((x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8))
    with pytest.warns(UserWarning, match=r"ran out of data at the start of epoch 2; training stops"):
        history = model.fit(one_pass, epochs=3, shuffle=False, verbose=0)
    assert history.epoch == [0]


class FakeTensor:
    """A framework tensor as fit sees it: `__array__`, and torch's `detach`/`cpu`."""

    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)

    def detach(self):
        return self

    def cpu(self):
        return self


def test_tf_data_and_torch_style_batches_are_read_by_iteration():
    x, y = regression_data(n=24)

    class InfiniteDataset:
        """As a repeated tf.data.Dataset: `len()` raises TypeError; tuples of tensors."""

        def __iter__(self):
            return ((FakeTensor(bx), FakeTensor(by)) for bx, by in forever(x, y))

        def __len__(self):
            raise TypeError("The dataset is infinite.")

    class TorchLoader:
        """As a DataLoader: lists `[x, y]` of tensors (its default collate makes lists)."""

        def __iter__(self):
            return ([FakeTensor(x[i : i + 8]), FakeTensor(y[i : i + 8])] for i in range(0, 24, 8))

        def __len__(self):
            return 3

    reference, _ = model_pair()
    expected = reference.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"]
    for data, steps in ((InfiniteDataset(), 3), (TorchLoader(), None)):
        model, _ = model_pair()
        history = model.fit(data, steps_per_epoch=steps, epochs=2, shuffle=False, verbose=0)
        assert history.history["loss"] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(model.predict(TorchLoader(), verbose=0), reference.predict(x, verbose=0), rtol=1e-6)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("validation_freq", [2, [1, 3]])
def test_validation_steps_batch_size_and_freq_match_keras(validation_freq):
    x, y = regression_data(n=48)
    ours, theirs = model_pair()
    kwargs = dict(
        batch_size=8,
        epochs=4,
        shuffle=False,
        verbose=0,
        validation_data=(x[32:], y[32:]),
        validation_batch_size=4,
        validation_steps=2,
        validation_freq=validation_freq,
    )
    h_ours = ours.fit(x[:32], y[:32], **kwargs)
    h_theirs = theirs.fit(x[:32], y[:32], **kwargs)
    assert_same_history(h_ours, h_theirs)
    assert len(h_ours.history["val_loss"]) == 2


def test_validation_split_and_sample_weight_match_keras():
    x, y = regression_data(n=40)
    weights = np.linspace(0.5, 1.5, 40).astype("float32")
    ours, theirs = model_pair()
    kwargs = dict(batch_size=8, epochs=2, shuffle=False, verbose=0, validation_split=0.25, sample_weight=weights)
    assert_same_history(ours.fit(x, y, **kwargs), theirs.fit(x, y, **kwargs))


def test_initial_epoch_matches_keras():
    x, y = regression_data(n=16)
    ours, theirs = model_pair()
    kwargs = dict(batch_size=8, epochs=5, initial_epoch=3, shuffle=False, verbose=0)
    assert_same_history(ours.fit(x, y, **kwargs), theirs.fit(x, y, **kwargs))


# --- class_weight -------------------------------------------------------------------------------


@pytest.mark.parametrize("one_hot", [False, True])
def test_class_weight_changes_the_loss_as_in_keras(one_hot):
    x, labels = classification_data(n=40)
    y = np.eye(3, dtype="float32")[labels] if one_hot else labels
    loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    class_weight = {0: 0.2, 1: 1.0, 2: 3.0}
    ours, theirs = model_pair(features=4, units=3, activation="softmax", loss=loss, metrics=["accuracy"])
    kwargs = dict(batch_size=8, epochs=3, shuffle=False, verbose=0, class_weight=class_weight)
    h_ours, h_theirs = ours.fit(x, y, **kwargs), theirs.fit(x, y, **kwargs)
    assert_same_history(h_ours, h_theirs)
    plain, _ = model_pair(features=4, units=3, activation="softmax", loss=loss)
    assert plain.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0).history["loss"][0] != pytest.approx(
        h_ours.history["loss"][0], rel=1e-3
    )
    # The same through a PyDataset (class weights become each batch's sample weights).
    ours, theirs = model_pair(features=4, units=3, activation="softmax", loss=loss)
    h_ours = ours.fit(Batches(x, y, 8), epochs=2, shuffle=False, verbose=0, class_weight=class_weight)
    h_theirs = theirs.fit(keras_batches(x, y, 8), epochs=2, shuffle=False, verbose=0, class_weight=class_weight)
    assert_same_history(h_ours, h_theirs)
    # train_on_batch takes it too.
    ours, theirs = model_pair(features=4, units=3, activation="softmax", loss=loss)
    assert ours.train_on_batch(x, y, class_weight=class_weight) == pytest.approx(
        float(theirs.train_on_batch(x, y, class_weight=class_weight)), rel=1e-5
    )


# --- evaluate and predict -------------------------------------------------------------------------


def test_evaluate_and_predict_steps_and_return_dict_match_keras():
    x, y = regression_data(n=40)
    ours, theirs = model_pair(metrics=["mae"])
    for kwargs in (dict(batch_size=8, steps=3), dict(batch_size=16), dict(steps=4)):
        assert ours.evaluate(x, y, verbose=0, return_dict=True, **kwargs) == pytest.approx(
            theirs.evaluate(x, y, verbose=0, return_dict=True, **kwargs), rel=1e-5
        )
        np.testing.assert_allclose(
            ours.predict(x, verbose=0, **kwargs), theirs.predict(x, verbose=0, **kwargs), rtol=1e-5
        )
    assert ours.evaluate(forever(x, y), steps=2, verbose=0) == pytest.approx(
        theirs.evaluate(forever(x, y), steps=2, verbose=0), rel=1e-5
    )
    assert ours.predict(forever(x, y), steps=2, verbose=0).shape == (16, 1)


# --- progress ----------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_knows_the_length_or_counts():
    x, y = regression_data(n=24)
    model, _ = model_pair()
    stream = Terminal()
    model.fit(Batches(x, y, 8), epochs=1, verbose=1, callbacks=[rk.callbacks.ProgbarLogger(stream)])
    assert re.search(r"\r3/3 \[=+\] - \d+s \d+ms/step - loss: \d\.\d{4}\n$", stream.getvalue())
    # A generator has no length: the bar counts, and knows the count from the first epoch's end.
    stream = Terminal()
    batches = (b for _ in range(2) for b in ((x[i : i + 8], y[i : i + 8]) for i in range(0, 24, 8)))
    model.fit(
        batches,
        steps_per_epoch=None,
        epochs=1,
        shuffle=False,
        verbose=1,
        callbacks=[rk.callbacks.ProgbarLogger(stream)],
    )
    out = stream.getvalue()
    assert "1/Unknown" in out and "\r6/6 [" in out


def test_verbose_values(capsys):
    x, y = regression_data(n=16)
    model, _ = model_pair()
    model.evaluate(x, y)  # "auto": a progress line, as Keras
    model.predict(x, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("1/1 [") and "loss:" in lines[0] and "loss" not in lines[1]
    for call in (
        lambda: model.fit(x, y, verbose=3),
        lambda: model.evaluate(x, y, verbose="loud"),
        lambda: model.predict(x, verbose=1.0),
    ):
        with pytest.raises(ValueError, match=r"verbose: expected 0, 1, 2 or 'auto', received"):
            call()


# --- arguments that cannot be honoured ------------------------------------------------------------


def test_arguments_that_cannot_be_honoured_raise():
    x, y = regression_data(n=16)
    model, _ = model_pair()
    data = Batches(x, y, 8)
    errors = [
        (lambda: model.fit(data, y, verbose=0), r"^y: expected None when x is an iterable of batches \(Batches"),
        (
            lambda: model.fit(data, sample_weight=np.ones(16), verbose=0),
            r"^sample_weight: expected None when x is an iterable",
        ),
        (
            lambda: model.fit(data, validation_split=0.2, verbose=0),
            r"^validation_split: expected x as arrays, received an iterable",
        ),
        (
            lambda: model.fit(x, y, validation_split=1.5, verbose=0),
            r"^validation_split: expected a float in \(0, 1\), received 1.5",
        ),
        (
            lambda: model.fit(x, y, steps_per_epoch=0, verbose=0),
            r"^steps_per_epoch: expected a positive integer or None, received 0",
        ),
        (
            lambda: model.fit(x, y, validation_data=(x, y), validation_steps=2.5, verbose=0),
            r"^validation_steps: expected a positive integer",
        ),
        (
            lambda: model.fit(x, y, validation_data=(x, y), validation_freq=0, verbose=0),
            r"^validation_freq: expected a positive integer or a list",
        ),
        (lambda: model.fit(x, y, epochs=-1, verbose=0), r"^epochs: expected a non-negative integer, received -1"),
        (
            lambda: model.fit(x, y, shuffle="yes", verbose=0),
            r"^shuffle: expected True, False or 'batch', received 'yes'",
        ),
        (
            lambda: model.fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(16), verbose=0),
            r"^class_weight: expected no sample weights alongside, received both",
        ),
        (
            lambda: model.fit(x, y, class_weight=[1.0, 2.0], verbose=0),
            r"^class_weight: expected a dict from class index to weight, received list",
        ),
        (
            lambda: model.fit(Batches(x, y, 8, np.ones(16)), class_weight={0: 2.0}, verbose=0),
            r"^class_weight: expected no sample weights alongside",
        ),
        (
            lambda: model.evaluate(x, y, steps=-2, verbose=0),
            r"^steps: expected a positive integer or None, received -2",
        ),
        (
            lambda: model.fit(iter([(x, y, None, None)]), verbose=0, shuffle=False),
            r"^batch: expected x, \(x,\), \(x, y\) or \(x, y, sample_weight\), received a tuple of 4",
        ),
    ]
    for call, message in errors:
        with pytest.raises(ValueError, match=message):
            call()
    a, b = rk.Input((3,), name="a"), rk.Input((3,), name="b")
    two = rk.Model([a, b], [rk.layers.Dense(2, name="p")(a), rk.layers.Dense(2, name="q")(b)])
    two.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(
        ValueError, match=r"^class_weight: expected a model with one output, received targets for 2 outputs"
    ):
        two.fit([x, x], [y.astype(int), y.astype(int)], class_weight={0: 1.0}, verbose=0)
    # Arguments an iterable cannot use are said, not silently dropped.
    with pytest.warns(UserWarning, match=r"batch_size=4 has no effect when x is an iterable of batches"):
        model.fit(data, batch_size=4, shuffle=False, verbose=0)
    # shuffle (True by default) does not apply to a generator, as in Keras: no warning each fit.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(((x, y) for _ in range(1)), verbose=0)


def test_per_output_sample_weights_match_keras():
    x, y = regression_data(n=24)
    rng = np.random.default_rng(3)
    y2 = rng.random((24, 2)).astype("float32")
    w1, w2 = rng.random(24).astype("float32"), rng.random(24).astype("float32")

    def build(lib):
        inputs = lib.Input((3,), name="x")
        model = lib.Model(inputs, [lib.layers.Dense(1, name="one")(inputs), lib.layers.Dense(2, name="two")(inputs)])
        return model

    ours, theirs = build(rk), build(keras)
    theirs.set_weights(ours.get_weights())
    ours.compile(rk.optimizers.SGD(0.1), ["mse", "mse"])
    theirs.compile(keras.optimizers.SGD(0.1), ["mse", "mse"])
    kwargs = dict(batch_size=8, epochs=2, shuffle=False, verbose=0)
    h_ours = ours.fit(x, [y, y2], sample_weight=[w1, w2], **kwargs)
    h_theirs = theirs.fit(x, [y, y2], sample_weight=[w1, w2], **kwargs)
    assert h_ours.history["loss"] == pytest.approx(h_theirs.history["loss"], rel=1e-5)
    assert h_ours.history["one_loss"] == pytest.approx(h_theirs.history["one_loss"], rel=1e-5)


def test_the_step_plan_is_made_once_per_fit(monkeypatch):
    x, y = regression_data(n=64)
    model, _ = model_pair()
    calls = []
    original = type(model).constraint_for
    monkeypatch.setattr(type(model), "constraint_for", lambda self, w: calls.append(w) or original(self, w))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # 16 steps
    assert len(calls) == len(model.trainable_weights)
