"""`compile(steps_per_execution=N)`: the batch hooks of callbacks run once every N batches, as in
Keras 3, while the numbers stay those of one batch at a time; `auto_scale_loss` is checked."""

import numpy as np
import pytest

import rnnkit as rk
from keras_training import keras, model_pair, regression_data
from rnnkit import callbacks as cbks
from test_callbacks import recorder


def fit_evaluate_predict(lib, model, x, y, callback, **fit):
    model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[callback], **fit)
    model.evaluate(x, y, batch_size=4, verbose=0, callbacks=[callback])
    return model.predict(x, batch_size=4, verbose=0, callbacks=[callback])


def test_hooks_every_n_batches_as_keras():
    x, y = regression_data(n=24)  # 6 batches of 4: two executions of 3
    calls, predictions = {}, {}
    for name, model in zip(("ours", "keras"), model_pair(metrics=["mae"])):
        lib = rk if name == "ours" else keras
        model.compile(lib.optimizers.SGD(0.1), "mse", metrics=["mae"], steps_per_execution=3)
        callback = recorder(lib)
        predictions[name] = fit_evaluate_predict(lib, model, x, y, callback, validation_data=(x[:12], y[:12]))
        calls[name] = callback.calls
    assert calls["ours"] == calls["keras"]
    assert [c[:2] for c in calls["ours"] if c[0] == "on_train_batch_end"] == [
        ("on_train_batch_end", 2),
        ("on_train_batch_end", 5),
    ] * 2
    np.testing.assert_allclose(predictions["ours"], predictions["keras"], rtol=1e-5)


def test_same_numbers_as_one_batch_at_a_time():
    x, y = regression_data(n=40)
    results = []
    for steps in (1, 4):
        model, _ = model_pair(metrics=["mae"])
        model.compile(rk.optimizers.SGD(0.1), "mse", metrics=["mae"], steps_per_execution=steps)
        logs = []
        logger = cbks.LambdaCallback(
            on_train_batch_end=lambda batch, batch_logs, logs=logs: logs.append((batch, batch_logs))
        )
        history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0, callbacks=[logger])
        results.append((history.history, model.get_weights(), model.evaluate(x, y, batch_size=4, verbose=0), logs))
    (one_history, one_weights, one_eval, one_logs), (history, weights, evaluation, logs) = results
    assert history == one_history and evaluation == one_eval
    for a, b in zip(weights, one_weights):
        np.testing.assert_array_equal(a, b)
    # 10 batches an epoch: executions end at batches 3, 7 and (a shorter one) 9, with the logs
    # the one-at-a-time run had after those batches.
    assert [batch for batch, _ in logs] == [3, 7, 9, 3, 7, 9]
    by_batch = dict(enumerate(l for _, l in one_logs))
    assert [l for _, l in logs] == [by_batch[i] for i in (3, 7, 9, 13, 17, 19)]


def test_predict_logs_the_execution_outputs():
    x, _ = regression_data(n=20)
    model, _ = model_pair()
    model.compile("sgd", "mse", steps_per_execution=2)
    seen = []
    hook = cbks.LambdaCallback(on_predict_batch_end=lambda batch, logs: seen.append((batch, logs["outputs"].shape)))
    out = model.predict(x, batch_size=8, verbose=0, callbacks=[hook])
    assert seen == [(1, (16, 1)), (2, (4, 1))]
    np.testing.assert_array_equal(out, model.predict(x, batch_size=8, verbose=0))


def test_stop_training_takes_effect_after_the_execution():
    x, y = regression_data(n=40)
    model, _ = model_pair()
    model.compile(rk.optimizers.SGD(0.1), "mse", steps_per_execution=4)

    def stop(batch, logs):
        model.stop_training = True

    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[cbks.LambdaCallback(on_train_batch_end=stop)])
    assert int(model.optimizer.iterations) == 4


def test_checkpoints_count_batches_across_executions(tmp_path):
    x, y = regression_data(n=40)  # 10 batches an epoch; executions end at 2, 5, 8, 9
    model, _ = model_pair()
    model.compile(rk.optimizers.SGD(0.1), "mse", steps_per_execution=3)
    path = str(tmp_path / "w-{epoch}-{batch}.weights.h5")
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[cbks.ModelCheckpoint(path, save_weights_only=True, save_freq=5)],
    )
    # Batches since the last save: 3, 6 -> save after batch 6 of epoch 1; 3, 4, then 7 -> save
    # after batch 3 of epoch 2; 3, 6 -> save after its batch 9 (names are 1-based).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w-1-6.weights.h5", "w-2-3.weights.h5", "w-2-9.weights.h5"]


def test_saved_with_the_model(tmp_path):
    model, _ = model_pair()
    model.compile("sgd", "mse", steps_per_execution=7)
    path = tmp_path / "m.keras"
    model.save(path)
    assert rk.models.load_model(path).steps_per_execution == 7


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(steps_per_execution=0), r"^steps_per_execution: expected a positive integer, received 0\.$"),
        (dict(steps_per_execution=2.0), r"^steps_per_execution: expected a positive integer, received 2\.0\.$"),
        (dict(steps_per_execution=True), r"^steps_per_execution: expected a positive integer, received True\.$"),
        (dict(auto_scale_loss="yes"), r"^auto_scale_loss: expected True or False, received 'yes'\.$"),
    ],
)
def test_bad_arguments(kwargs, message):
    model, _ = model_pair()
    with pytest.raises(ValueError, match=message):
        model.compile("sgd", "mse", **kwargs)


def test_unknown_compile_argument():
    model, _ = model_pair()
    with pytest.raises(TypeError, match="steps_per_epoch"):
        model.compile("sgd", "mse", steps_per_epoch=3)
