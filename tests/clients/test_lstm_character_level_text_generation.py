"""The character-level text generation example (keras-io
examples/generative/lstm_character_level_text_generation.py) runs on rnnkit to its end."""


def test_lstm_character_level_text_generation(run_client):
    g = run_client("lstm_character_level_text_generation")
    losses = g["losses"]
    assert len(losses) == 2 and losses[-1] < losses[0]
    # Four diversities per epoch, each a full-length text over the corpus's characters.
    texts = g["generated_texts"]
    assert len(texts) == 8
    for text in texts:
        assert len(text) == g["generate_length"] and set(text) <= set(g["chars"])
    preds = g["model"].predict(g["x"][:5], verbose=0)
    assert preds.shape == (5, len(g["chars"]))
    assert abs(preds.sum(axis=-1) - 1).max() < 1e-5
