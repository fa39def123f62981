"""The code of the Keras RNN guide (``shared/seed/keras_rnn_guide_ru.txt``), run on rnnkit.

Every example of the sections up to and including "Bidirectional RNNs", and the NestedCell
example of "RNNs with list/dict inputs, or nested inputs", is kept verbatim except for the
imports and the ``tf.*`` calls, which are swapped as a user would:

    from tensorflow import keras            ->  import rnnkit as keras
    from tensorflow.keras import layers     ->  from rnnkit import layers
    tf.nest.flatten / tf.matmul / tf.einsum ->  keras.tree.flatten / keras.ops.matmul / keras.ops.einsum
    tf.TensorShape([a, b])                  ->  [a, b]

What the guide prints is asserted: each summary row's Output Shape and Param # columns, the
totals, and the shapes of outputs and states. Layer *names* are not compared with the guide's:
the guide ran on TF 2 (``model``, ``input_1``), rnnkit names as Keras 3 (``functional``,
``input_layer``), and automatic names depend on what other tests created before.

Not reproduced here: the "CuDNN kernels" section (MNIST download, compile/fit, matplotlib) lies
after "Bidirectional RNNs" and is out of scope; the guide's timings and its trained losses
depend on a GPU and on random initialisations.
"""

import numpy as np

import rnnkit as keras
from rnnkit import layers


def summary_table(model):
    """``model.summary()`` parsed by the header's column starts.

    Returns:
        ``(rows, totals)``: rows as dicts with ``name``, ``type``, ``shape``, ``params`` and
        ``connected`` (a list; continuation lines of "Connected to" are folded into their row),
        and the ``{"Total": ..., "Trainable": ..., "Non-trainable": ...}`` counts.
    """
    lines = []
    model.summary(print_fn=lines.append)
    header = next(line for line in lines if line.startswith("Layer (type)"))
    starts = [header.index(title) for title in ("Output Shape", "Param #")]
    if "Connected to" in header:
        starts.append(header.index("Connected to"))
    body = lines[lines.index(header) + 2 :]
    rows, totals = [], {}
    for line in body:
        if set(line) <= {"_", "="}:
            continue
        if " params: " in line:
            key, value = line.split(" params: ")
            totals[key] = int(value.replace(",", ""))
            continue
        bounds = [0, *starts, len(line)]
        fields = [line[a:b].strip() for a, b in zip(bounds, bounds[1:])]
        if fields[0] == "" and rows:  # continuation of "Connected to"
            rows[-1]["connected"].append(fields[-1])
            continue
        name, _, kind = fields[0].partition(" (")
        rows.append(
            {
                "name": name,
                "type": kind.rstrip(")"),
                "shape": fields[1],
                "params": int(fields[2]),
                "connected": [fields[3]] if len(fields) > 3 and fields[3] else [],
            }
        )
    return rows, totals


def check_sequential_summary(model, expected, total):
    """The Sequential summary has `expected` `(type, shape, params)` rows in order, and the totals."""
    rows, totals = summary_table(model)
    assert [(r["shape"], r["params"]) for r in rows] == [(shape, params) for _, shape, params in expected]
    for row, (kind, _, _), layer in zip(rows, expected, model.layers):
        # The "Layer (type)" column is cut at its width, as in the guide's
        # "bidirectional_1 (Bidirection".
        assert f"{layer.name} ({kind})".startswith(row["name"] + " (" + row["type"])
        assert type(layer).__name__ == kind
    for row, layer in zip(rows, model.layers):
        assert layer.count_params() == row["params"]
    assert totals == {"Total": total, "Trainable": total, "Non-trainable": 0}
    assert model.count_params() == total


# --- "Built-in RNN layers: a simple example" ----------------------------------------------------


def test_builtin_rnn_layers_simple_example():
    model = keras.Sequential()
    # Add an Embedding layer expecting input vocab of size 1000, and
    # output embedding dimension of size 64.
    model.add(layers.Embedding(input_dim=1000, output_dim=64))

    # Add a LSTM layer with 128 internal units.
    model.add(layers.LSTM(128))

    # Add a Dense layer with 10 units.
    model.add(layers.Dense(10))

    model.summary()

    check_sequential_summary(
        model,
        [
            ("Embedding", "(None, None, 64)", 64000),
            ("LSTM", "(None, 128)", 98816),
            ("Dense", "(None, 10)", 1290),
        ],
        164106,
    )
    out = model(np.random.randint(0, 1000, size=(3, 7)))
    assert out.shape == (3, 10)


# --- "Outputs and states" -------------------------------------------------------------------------


def test_outputs_and_states_return_sequences():
    model = keras.Sequential()
    model.add(layers.Embedding(input_dim=1000, output_dim=64))

    # The output of GRU will be a 3D tensor of shape (batch_size, timesteps, 256)
    model.add(layers.GRU(256, return_sequences=True))

    # The output of SimpleRNN will be a 2D tensor of shape (batch_size, 128)
    model.add(layers.SimpleRNN(128))

    model.add(layers.Dense(10))

    model.summary()

    check_sequential_summary(
        model,
        [
            ("Embedding", "(None, None, 64)", 64000),
            ("GRU", "(None, None, 256)", 247296),
            ("SimpleRNN", "(None, 128)", 49280),
            ("Dense", "(None, 10)", 1290),
        ],
        361866,
    )
    x = np.random.randint(0, 1000, size=(2, 5))
    gru = model.layers[1]
    assert gru(model.layers[0](x)).shape == (2, 5, 256)
    assert model(x).shape == (2, 10)


def test_outputs_and_states_encoder_decoder():
    encoder_vocab = 1000
    decoder_vocab = 2000

    encoder_input = layers.Input(shape=(None,))
    encoder_embedded = layers.Embedding(input_dim=encoder_vocab, output_dim=64)(encoder_input)

    # Return states in addition to output
    output, state_h, state_c = layers.LSTM(64, return_state=True, name="encoder")(encoder_embedded)
    encoder_state = [state_h, state_c]

    decoder_input = layers.Input(shape=(None,))
    decoder_embedded = layers.Embedding(input_dim=decoder_vocab, output_dim=64)(decoder_input)

    # Pass the 2 states to a new LSTM layer, as initial state
    decoder_output = layers.LSTM(64, name="decoder")(decoder_embedded, initial_state=encoder_state)
    output = layers.Dense(10)(decoder_output)

    model = keras.Model([encoder_input, decoder_input], output)
    model.summary()

    assert state_h.shape == (None, 64) and state_c.shape == (None, 64)
    rows, totals = summary_table(model)
    # The guide's table, row by row: (type, Output Shape as printed, Param #). The encoder's
    # shape column is truncated in the guide exactly as here.
    expected = [
        ("InputLayer", "[(None, None)]", 0),
        ("InputLayer", "[(None, None)]", 0),
        ("Embedding", "(None, None, 64)", 64000),
        ("Embedding", "(None, None, 64)", 128000),
        ("LSTM", "[(None, 64), (None,", 33024),
        ("LSTM", "(None, 64)", 33024),
        ("Dense", "(None, 10)", 650),
    ]
    # Compared as multisets: the row order is checked in the test below.
    assert sorted((r["type"], r["shape"], r["params"]) for r in rows) == sorted(expected)
    by_name = {r["name"]: r for r in rows}
    assert by_name["encoder"]["params"] == 33024 and by_name["encoder"]["shape"] == "[(None, 64), (None,"
    # "decoder ... embedding_3[0][0] / encoder[0][1] / encoder[0][2]"
    decoder_links = by_name["decoder"]["connected"]
    assert decoder_links[1:] == ["encoder[0][1]", "encoder[0][2]"]
    decoder_embedding = next(r for r in rows if r["type"] == "Embedding" and r["params"] == 128000)
    assert decoder_links[0] == f"{decoder_embedding['name']}[0][0]"
    encoder_embedding = next(r for r in rows if r["type"] == "Embedding" and r["params"] == 64000)
    assert by_name["encoder"]["connected"] == [f"{encoder_embedding['name']}[0][0]"]
    assert totals == {"Total": 258698, "Trainable": 258698, "Non-trainable": 0}

    out = model([np.random.randint(0, 1000, size=(3, 6)), np.random.randint(0, 2000, size=(3, 4))])
    assert out.shape == (3, 10)


def test_outputs_and_states_encoder_decoder_row_order():
    encoder_input = layers.Input(shape=(None,))
    encoder_embedded = layers.Embedding(input_dim=1000, output_dim=64)(encoder_input)
    output, state_h, state_c = layers.LSTM(64, return_state=True, name="encoder")(encoder_embedded)
    decoder_input = layers.Input(shape=(None,))
    decoder_embedded = layers.Embedding(input_dim=2000, output_dim=64)(decoder_input)
    decoder_output = layers.LSTM(64, name="decoder")(decoder_embedded, initial_state=[state_h, state_c])
    output = layers.Dense(10)(decoder_output)
    model = keras.Model([encoder_input, decoder_input], output)
    rows, _ = summary_table(model)
    assert [(r["type"], r["params"]) for r in rows] == [
        ("InputLayer", 0),
        ("InputLayer", 0),
        ("Embedding", 64000),
        ("Embedding", 128000),
        ("LSTM", 33024),
        ("LSTM", 33024),
        ("Dense", 650),
    ]


# --- "Cross-batch statefulness" -----------------------------------------------------------------


def test_cross_batch_statefulness_sub_sequences():
    # The guide's sequence s = [t0, ..., t1547] split in 16 sub-sequences (features and batch
    # are not given by the guide: 3 samples of 8 features here).
    s = np.random.random((3, 1548, 8)).astype(np.float32)
    sub_sequences = np.array_split(s, 16, axis=1)

    lstm_layer = layers.LSTM(64, stateful=True)
    for s in sub_sequences:
        output = lstm_layer(s)

    assert output.shape == (3, 64)
    assert [tuple(state.shape) for state in lstm_layer.states] == [(3, 64), (3, 64)]
    # Statefulness == one pass over the whole sequence.
    whole = layers.LSTM(64, return_state=True)
    whole(np.concatenate(sub_sequences, axis=1)[:, :2])
    whole.set_weights(lstm_layer.get_weights())
    out, h, c = whole(np.concatenate(sub_sequences, axis=1))
    np.testing.assert_allclose(np.asarray(output), np.asarray(out), atol=1e-5)
    np.testing.assert_allclose(np.asarray(lstm_layer.states[1]), np.asarray(c), atol=1e-5)


def test_cross_batch_statefulness_full_example():
    paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph3 = np.random.random((20, 10, 50)).astype(np.float32)

    lstm_layer = layers.LSTM(64, stateful=True)
    output = lstm_layer(paragraph1)
    states_after_1 = [np.array(s) for s in lstm_layer.states]
    output = lstm_layer(paragraph2)
    states_after_2 = [np.array(s) for s in lstm_layer.states]
    output = lstm_layer(paragraph3)

    assert output.shape == (20, 64)
    assert [tuple(s.shape) for s in lstm_layer.states] == [(20, 64), (20, 64)]
    np.testing.assert_array_equal(np.asarray(lstm_layer.states[0]), np.asarray(output))
    assert not np.allclose(states_after_1[0], states_after_2[0])
    # The states are not weights ("not included in layer.weights").
    assert len(lstm_layer.weights) == 3

    # reset_states() will reset the cached state to the original initial_state.
    # If no initial_state was provided, zero-states will be used by default.
    lstm_layer.reset_states()

    assert [tuple(s.shape) for s in lstm_layer.states] == [(20, 64), (20, 64)]
    for state in lstm_layer.states:
        np.testing.assert_array_equal(np.asarray(state), np.zeros((20, 64), np.float32))
    # After the reset the layer starts afresh: paragraph1 gives its first output again.
    fresh = lstm_layer(paragraph1)
    np.testing.assert_allclose(np.asarray(fresh), np.asarray(states_after_1[0]), atol=1e-6)


# --- "RNN State Reuse" --------------------------------------------------------------------------


def test_rnn_state_reuse():
    paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
    paragraph3 = np.random.random((20, 10, 50)).astype(np.float32)

    lstm_layer = layers.LSTM(64, stateful=True)
    output = lstm_layer(paragraph1)
    output = lstm_layer(paragraph2)

    existing_state = lstm_layer.states

    new_lstm_layer = layers.LSTM(64)
    new_output = new_lstm_layer(paragraph3, initial_state=existing_state)

    assert [tuple(s.shape) for s in existing_state] == [(20, 64), (20, 64)]
    assert new_output.shape == (20, 64)
    # The states were used: with the same weights, the new layer continues where the stateful
    # one stopped, and differs from a start at zeros.
    new_lstm_layer.set_weights(lstm_layer.get_weights())
    continued = new_lstm_layer(paragraph3, initial_state=existing_state)
    np.testing.assert_allclose(np.asarray(continued), np.asarray(lstm_layer(paragraph3)), atol=1e-6)
    assert not np.allclose(np.asarray(continued), np.asarray(new_lstm_layer(paragraph3)), atol=1e-3)


# --- "Bidirectional RNNs" -----------------------------------------------------------------------


def test_bidirectional_rnns():
    model = keras.Sequential()

    model.add(layers.Bidirectional(layers.LSTM(64, return_sequences=True), input_shape=(5, 10)))
    model.add(layers.Bidirectional(layers.LSTM(32)))
    model.add(layers.Dense(10))

    model.summary()

    check_sequential_summary(
        model,
        [
            ("Bidirectional", "(None, 5, 128)", 38400),
            ("Bidirectional", "(None, 64)", 41216),
            ("Dense", "(None, 10)", 650),
        ],
        80266,
    )
    assert model(np.random.random((4, 5, 10))).shape == (4, 10)
    first = model.layers[0]
    assert first.forward_layer.go_backwards is False and first.backward_layer.go_backwards is True


# --- "RNNs with list/dict inputs, or nested inputs" ---------------------------------------------


class NestedCell(keras.layers.Layer):
    def __init__(self, unit_1, unit_2, unit_3, **kwargs):
        self.unit_1 = unit_1
        self.unit_2 = unit_2
        self.unit_3 = unit_3
        self.state_size = [[unit_1], [unit_2, unit_3]]
        self.output_size = [[unit_1], [unit_2, unit_3]]
        super().__init__(**kwargs)

    def build(self, input_shapes):
        # expect input_shape to contain 2 items, [(batch, i1), (batch, i2, i3)]
        i1 = input_shapes[0][1]
        i2 = input_shapes[1][1]
        i3 = input_shapes[1][2]

        self.kernel_1 = self.add_weight(shape=(i1, self.unit_1), initializer="uniform", name="kernel_1")
        self.kernel_2_3 = self.add_weight(
            shape=(i2, i3, self.unit_2, self.unit_3),
            initializer="uniform",
            name="kernel_2_3",
        )

    def call(self, inputs, states):
        # inputs should be in [(batch, input_1), (batch, input_2, input_3)]
        # state should be in shape [(batch, unit_1), (batch, unit_2, unit_3)]
        input_1, input_2 = keras.tree.flatten(inputs)
        s1, s2 = states

        output_1 = keras.ops.matmul(input_1, self.kernel_1)
        output_2_3 = keras.ops.einsum("bij,ijkl->bkl", input_2, self.kernel_2_3)
        state_1 = s1 + output_1
        state_2_3 = s2 + output_2_3

        output = (output_1, output_2_3)
        new_states = (state_1, state_2_3)

        return output, new_states

    def get_config(self):
        return {"unit_1": self.unit_1, "unit_2": unit_2, "unit_3": self.unit_3}  # noqa: F821 (verbatim)


def build_nested_model():
    """The guide's "Build an RNN model with nested input/output", verbatim; returns its names."""
    unit_1 = 10
    unit_2 = 20
    unit_3 = 30

    i1 = 32
    i2 = 64
    i3 = 32
    batch_size = 64
    num_batches = 10
    timestep = 50

    cell = NestedCell(unit_1, unit_2, unit_3)
    rnn = keras.layers.RNN(cell)

    input_1 = keras.Input((None, i1))
    input_2 = keras.Input((None, i2, i3))

    outputs = rnn((input_1, input_2))

    model = keras.models.Model([input_1, input_2], outputs)
    return locals()


def test_nested_cell_builds_model():
    env = build_nested_model()
    model, outputs, cell = env["model"], env["outputs"], env["cell"]
    out_1, out_2_3 = outputs
    assert out_1.shape == (None, 10) and out_2_3.shape == (None, 20, 30)
    assert [tuple(w.shape) for w in model.weights] == [(32, 10), (64, 32, 20, 30)]
    rows, totals = summary_table(model)
    assert [(r["type"], r["params"]) for r in rows] == [("InputLayer", 0), ("InputLayer", 0), ("RNN", 1229120)]
    assert totals == {"Total": 1229120, "Trainable": 1229120, "Non-trainable": 0}

    # Run on a few samples of the guide's shapes; the RNN's output is the last step's cell output
    # and the states are the running sums of the outputs.
    rng = np.random.default_rng(0)
    x1 = rng.random((3, 5, 32)).astype(np.float32)
    x2 = rng.random((3, 5, 64, 32)).astype(np.float32)
    y1, y23 = model([x1, x2])
    k1, k23 = (np.asarray(w) for w in cell.weights)
    np.testing.assert_allclose(np.asarray(y1), x1[:, -1] @ k1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(y23), np.einsum("bij,ijkl->bkl", x2[:, -1], k23), rtol=1e-4, atol=1e-6)
    rnn_state = keras.layers.RNN(cell, return_state=True)
    (_, _), s1, s23 = rnn_state((x1, x2))
    np.testing.assert_allclose(np.asarray(s1), x1.sum(axis=1) @ k1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(s23), np.einsum("btij,ijkl->bkl", x2, k23), rtol=1e-4, atol=1e-5)


def test_nested_cell_one_training_step_reduces_mse():
    """Stands in for the guide's compile/fit until they exist: one SGD step through the tape
    on the guide's random data shapes (one batch instead of ten) lowers the MSE."""
    env = build_nested_model()
    model = env["model"]
    batch_size, num_batches, timestep = env["batch_size"], 1, env["timestep"]
    i1, i2, i3, unit_1, unit_2, unit_3 = (env[k] for k in ("i1", "i2", "i3", "unit_1", "unit_2", "unit_3"))

    input_1_data = np.random.random((batch_size * num_batches, timestep, i1))
    input_2_data = np.random.random((batch_size * num_batches, timestep, i2, i3))
    target_1_data = np.random.random((batch_size * num_batches, unit_1))
    target_2_data = np.random.random((batch_size * num_batches, unit_2, unit_3))
    input_data = [input_1_data, input_2_data]
    target_data = [target_1_data, target_2_data]

    def mse():
        predictions = model(input_data)
        return sum(keras.ops.mean(keras.ops.square(p - t.astype(np.float32))) for p, t in zip(predictions, target_data))

    with keras.GradientTape() as tape:
        before = mse()
    grads = tape.gradient(before, model.trainable_weights)
    assert [g.shape for g in grads] == [w.shape for w in model.trainable_weights]
    assert all(np.abs(np.asarray(g)).max() > 0 for g in grads)
    for weight, grad in zip(model.trainable_weights, grads):
        weight.assign(weight - 0.1 * np.asarray(grad))
    after = mse()
    assert float(after) < float(before)


def test_nested_cell_compile_and_fit_verbatim():
    env = build_nested_model()
    model = env["model"]
    batch_size, num_batches, timestep = env["batch_size"], env["num_batches"], env["timestep"]
    i1, i2, i3, unit_1, unit_2, unit_3 = (env[k] for k in ("i1", "i2", "i3", "unit_1", "unit_2", "unit_3"))

    model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])

    input_1_data = np.random.random((batch_size * num_batches, timestep, i1))
    input_2_data = np.random.random((batch_size * num_batches, timestep, i2, i3))
    target_1_data = np.random.random((batch_size * num_batches, unit_1))
    target_2_data = np.random.random((batch_size * num_batches, unit_2, unit_3))
    input_data = [input_1_data, input_2_data]
    target_data = [target_1_data, target_2_data]

    history = model.fit(input_data, target_data, batch_size=batch_size)
    # "10/10 [...] - loss: ... - rnn_1_loss: ... - rnn_1_1_loss: ..."
    assert len(history.history["loss"]) == 1
