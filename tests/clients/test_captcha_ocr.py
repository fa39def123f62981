"""The captcha OCR example (keras-io examples/vision/captcha_ocr.py: CNN + Bidirectional LSTMs
trained under CTC through an endpoint layer's add_loss) runs on rnnkit to its end."""

import numpy as np


def test_captcha_ocr(run_client):
    g = run_client("captcha_ocr")
    history = g["history"].history
    assert set(history) == {"loss", "val_loss"}
    assert len(history["loss"]) == 3 and history["loss"][-1] < 0.5 * history["loss"][0]
    assert np.isfinite(history["val_loss"]).all()
    preds = g["preds"]
    assert preds.shape == (16, 50, 20 + 1)  # 19 characters, the unknown-character index, one more
    np.testing.assert_allclose(preds.sum(axis=-1), 1, rtol=1e-5)
    # The validation labels come back as the generated strings; the decoded texts use only the
    # 19 characters and at most max_length of them.
    assert g["orig_texts"] == list(g["y_valid"][:16])
    assert len(g["pred_texts"]) == 16
    assert all(len(text) <= 5 and set(text) <= set(g["characters"]) for text in g["pred_texts"])
