"""The weather forecasting example (keras-io examples/timeseries/timeseries_weather_forecasting.py)
runs on rnnkit to its end: windows from timeseries_dataset_from_array, fit on datasets with
EarlyStopping and ModelCheckpoint, the loss plot and the single-step predictions."""

import os

import numpy as np
import pytest


def test_timeseries_weather_forecasting(run_client):
    g = run_client("timeseries_weather_forecasting")
    history = g["history"].history
    assert set(history) == {"loss", "val_loss"}
    assert len(history["loss"]) == 2 and history["loss"][-1] < history["loss"][0]

    # Windows of 120 hourly steps of the 7 features; labels one column.
    windows, labels = next(iter(g["dataset_train"]))
    assert windows.shape == (256, 120, 7) and labels.shape == (256, 1)
    train_windows = len(g["x_train"]) - (120 - 1) * 6
    assert len(g["dataset_train"]) == -(-train_windows // 256)

    # The best epoch's weights were written where the example says, and load back.
    assert os.path.exists("model_checkpoint.weights.h5")
    model = g["model"]
    model.load_weights("model_checkpoint.weights.h5")

    predictions = g["predictions"]
    assert len(predictions) == len(g["dataset_val"]) >= 1
    assert all(p.shape == (1,) and np.isfinite(p).all() for p in predictions)
    assert np.isfinite(model.evaluate(g["dataset_val"], verbose=0))


def test_the_examples_take_call():
    import rnnkit as keras

    series = np.arange(100.0).reshape(50, 2)
    dataset = keras.preprocessing.timeseries_dataset_from_array(series, series[:, 0], sequence_length=5, batch_size=8)
    taken = dataset.take(1)
    assert len(taken) == 1 and len(dataset.take(-1)) == len(dataset) == 6
    for _ in range(2):  # reusable, as a tf.data dataset is
        batches = list(taken)
        assert len(batches) == 1
        inputs, targets = batches[0]
        np.testing.assert_array_equal(inputs, [series[i : i + 5] for i in range(8)])
        np.testing.assert_array_equal(targets, series[:8, 0])
    with pytest.raises(ValueError, match=r"^take: count: expected an int >= -1, received -2$"):
        dataset.take(-2)
