"""The "Working with RNNs" guide (keras-io guides/working_with_rnns.py) runs on rnnkit to its end,
including the MNIST-style training of the "CuDNN kernels" section and the nested-input cell."""

import numpy as np


def test_working_with_rnns(run_client):
    g = run_client("working_with_rnns")
    # The LSTM model's epoch, then the RNN(LSTMCell) model continuing from its weights.
    first = g["history"].history
    second = g["noncudnn_history"].history
    assert set(first) == set(second) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert second["loss"][0] < first["loss"][0]

    assert g["output"].shape == (20, 64) and g["new_output"].shape == (20, 64)
    assert [tuple(s.shape) for s in g["existing_state"]] == [(20, 64), (20, 64)]
    result = g["keras"].ops.convert_to_numpy(g["result"])
    assert result.shape == (1,) and 0 <= int(result[0]) < 10
    # LSTM and RNN(LSTMCell) compute the same function with the same weights.
    x = g["x_test"][:8]
    rebuilt = g["build_model"](allow_cudnn_kernel=False)
    rebuilt.set_weights(g["cpu_model"].get_weights())
    np.testing.assert_allclose(
        rebuilt.predict(x, verbose=0), g["cpu_model"].predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )

    nested = g["nested_history"].history
    assert len(nested["loss"]) == 1 and np.isfinite(nested["loss"][0])
    out_1, out_2 = g["model"].predict(g["input_data"], verbose=0)
    assert out_1.shape == (128, 10) and out_2.shape == (128, 20, 30)
    registered = g["keras"].saving.get_registered_object("Custom>NestedCell")
    assert registered is g["NestedCell"]
