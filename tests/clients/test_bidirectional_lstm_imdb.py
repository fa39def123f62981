"""The bidirectional LSTM IMDB example (keras-io examples/nlp/bidirectional_lstm_imdb.py) runs
on rnnkit to its end."""

import numpy as np


def test_bidirectional_lstm_imdb(run_client):
    g = run_client("bidirectional_lstm_imdb")
    losses = g["history"].history["loss"]
    assert len(losses) == 2 and losses[-1] < losses[0]
    assert set(g["history"].history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert g["x_train"].shape == (400, 200) and g["x_train"].dtype == np.int32
    assert g["x_val"].shape == (100, 200)
    model = g["model"]
    assert model.predict(g["x_val"], verbose=0).shape == (100, 1)
    # The input is variable-length: a shorter padding runs through the same model.
    assert model.predict(g["x_val"][:3, -50:], verbose=0).shape == (3, 1)
    loss, accuracy = model.evaluate(g["x_val"], g["y_val"], verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1
