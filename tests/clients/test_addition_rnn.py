"""The addition example (keras-io examples/nlp/addition_rnn.py) runs on rnnkit to its end."""

import numpy as np


def test_addition_rnn(run_client):
    g = run_client("addition_rnn")
    losses = [h.history["loss"][0] for h in g["histories"]]
    assert len(losses) == 2
    assert losses[-1] < losses[0]
    assert set(g["histories"][-1].history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # The decoding loop ran ten times per iteration on one-row predictions of (1, DIGITS + 1).
    assert len(g["checks"]) == 20
    for question, correct, guess, shape in g["checks"]:
        assert shape == (1, g["DIGITS"] + 1)
        assert len(question) == g["MAXLEN"] and len(correct) == len(guess) == g["DIGITS"] + 1
    assert g["model"].predict(g["x_val"], verbose=0).shape == (len(g["x_val"]), g["DIGITS"] + 1, 12)
    assert np.isfinite(g["histories"][-1].history["val_loss"][0])
