"""The character-level seq2seq example (keras-io examples/nlp/lstm_seq2seq.py) runs on rnnkit to
its end: training, save/load, inference models cut from the loaded graph, greedy decoding."""

import numpy as np


def test_lstm_seq2seq(run_client):
    g = run_client("lstm_seq2seq")
    history = g["history"].history
    assert len(history["loss"]) == 2 and history["loss"][-1] < history["loss"][0]
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}

    model, latent_dim = g["model"], g["latent_dim"]
    n_dec = g["num_decoder_tokens"]
    # The indices the example relies on: Input, Input, encoder LSTM, decoder LSTM, Dense.
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "InputLayer", "LSTM", "LSTM", "Dense"]

    sentence = g["encoder_input_data"][:1]
    states = g["encoder_model"].predict(sentence, verbose=0)
    assert [s.shape for s in states] == [(1, latent_dim), (1, latent_dim)]
    # The encoder model shares the loaded model's weights: its states are the training
    # model's encoder states.
    lstm = model.layers[2]
    _, h, c = lstm(sentence)
    np.testing.assert_allclose(states[0], np.asarray(h), rtol=1e-5, atol=1e-6)
    step = np.zeros((1, 1, n_dec), "float32")
    out, h, c = g["decoder_model"].predict([step] + states, verbose=0)
    assert out.shape == (1, 1, n_dec) and h.shape == c.shape == (1, latent_dim)

    decoded = g["decoded"]
    assert len(decoded) == 20
    targets = set(g["target_characters"])
    for text in decoded:
        assert 1 <= len(text) <= g["max_decoder_seq_length"] + 1 and set(text) <= targets
