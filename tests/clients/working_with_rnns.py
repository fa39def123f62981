"""Client: keras-io guide `guides/working_with_rnns.py` ("Working with RNNs"), written again
for rnnkit, every section with code.

What differs from the guide:
- the imports (`import rnnkit as keras`, `from rnnkit import layers`), and the guide's
  TensorFlow calls swapped for their Keras 3 equivalents, as a user without TensorFlow would:
  `tf.device("CPU:0")` -> `keras.device("CPU:0")`, `tf.expand_dims`/`tf.argmax` ->
  `keras.ops.expand_dims`/`keras.ops.argmax`, `result.numpy()` -> `keras.ops.convert_to_numpy`,
  `tf.nest.flatten` -> `keras.tree.flatten`, `tf.matmul`/`tf.einsum` -> `keras.ops.matmul`/
  `keras.ops.einsum`, `tf.TensorShape([a, b])` -> `[a, b]`;
- the data: `keras.datasets.mnist.load_data()` downloads 60,000 + 10,000 digits; here
  `load_mnist_like` makes 1,000 + 200 uint8 images of 28 x 28 (uint8 labels 0-9) in which the
  digit decides which rows carry a bright stroke, so the row-by-row LSTM can learn it;
- the nested-input example uses num_batches=2 and timestep=10 instead of 10 and 50 (its
  float64 input of shape (640, 50, 64, 32) alone would take 0.5 GB);
- the fits' histories are kept (`history`, `noncudnn_history`, `nested_history`) and the
  matplotlib figure is drawn on the backend MPLBACKEND names (Agg in the tests).
Everything else - the three summaries, the encoder/decoder states model, the stateful LSTM and
`reset_states`, reusing `layer.states` as `initial_state`, the Bidirectional Sequential model,
`build_model` with LSTM or RNN(LSTMCell) + BatchNormalization, compile/fit with
SparseCategoricalCrossentropy(from_logits=True) and sgd, `set_weights` across the two models,
`predict_on_batch`, and the registered NestedCell trained through `keras.layers.RNN` - follows
the guide.
"""

import matplotlib.pyplot as plt
import numpy as np

import rnnkit as keras
from rnnkit import layers

# Built-in RNN layers: a simple example
model = keras.Sequential()
model.add(layers.Embedding(input_dim=1000, output_dim=64))  # 1000 words, 64-dim vectors
model.add(layers.LSTM(128))
model.add(layers.Dense(10))
model.summary()

# Outputs and states
model = keras.Sequential()
model.add(layers.Embedding(input_dim=1000, output_dim=64))
model.add(layers.GRU(256, return_sequences=True))  # (batch, timesteps, 256)
model.add(layers.SimpleRNN(128))  # (batch, 128)
model.add(layers.Dense(10))
model.summary()

encoder_vocab = 1000
decoder_vocab = 2000
encoder_input = layers.Input(shape=(None,))
encoder_embedded = layers.Embedding(input_dim=encoder_vocab, output_dim=64)(encoder_input)
output, state_h, state_c = layers.LSTM(64, return_state=True, name="encoder")(encoder_embedded)
encoder_state = [state_h, state_c]
decoder_input = layers.Input(shape=(None,))
decoder_embedded = layers.Embedding(input_dim=decoder_vocab, output_dim=64)(decoder_input)
decoder_output = layers.LSTM(64, name="decoder")(decoder_embedded, initial_state=encoder_state)
output = layers.Dense(10)(decoder_output)
model = keras.Model([encoder_input, decoder_input], output)
model.summary()

# Cross-batch statefulness
paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
paragraph3 = np.random.random((20, 10, 50)).astype(np.float32)
lstm_layer = layers.LSTM(64, stateful=True)
output = lstm_layer(paragraph1)
output = lstm_layer(paragraph2)
output = lstm_layer(paragraph3)
lstm_layer.reset_states()  # back to zero states

# RNN state reuse
paragraph1 = np.random.random((20, 10, 50)).astype(np.float32)
paragraph2 = np.random.random((20, 10, 50)).astype(np.float32)
paragraph3 = np.random.random((20, 10, 50)).astype(np.float32)
lstm_layer = layers.LSTM(64, stateful=True)
output = lstm_layer(paragraph1)
output = lstm_layer(paragraph2)
existing_state = lstm_layer.states
new_lstm_layer = layers.LSTM(64)
new_output = new_lstm_layer(paragraph3, initial_state=existing_state)

# Bidirectional RNNs
model = keras.Sequential()
model.add(layers.Bidirectional(layers.LSTM(64, return_sequences=True), input_shape=(5, 10)))
model.add(layers.Bidirectional(layers.LSTM(32)))
model.add(layers.Dense(10))
model.summary()

# Performance optimization and CuDNN kernels
batch_size = 64
input_dim = 28  # each image row is a time step of 28 pixels
units = 64
output_size = 10


def build_model(allow_cudnn_kernel=True):
    if allow_cudnn_kernel:
        lstm_layer = keras.layers.LSTM(units, input_shape=(None, input_dim))
    else:
        lstm_layer = keras.layers.RNN(keras.layers.LSTMCell(units), input_shape=(None, input_dim))
    return keras.models.Sequential([lstm_layer, keras.layers.BatchNormalization(), keras.layers.Dense(output_size)])


def load_mnist_like(train=1000, test=200, seed=5):
    """Stands in for `mnist.load_data()`: uint8 images (n, 28, 28) and uint8 labels (n,)."""
    rng = np.random.default_rng(seed)

    def digits(count):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28))
        for image, label in zip(images, labels):
            row = 3 + 2 * int(label) + int(rng.integers(0, 2))
            image[row : row + 2, 6:22] = rng.integers(180, 256, (2, 16))
        return images.astype(np.uint8), labels

    return digits(train), digits(test)


(x_train, y_train), (x_test, y_test) = load_mnist_like()
x_train, x_test = x_train / 255.0, x_test / 255.0
sample, sample_label = x_train[0], y_train[0]

model = build_model(allow_cudnn_kernel=True)
model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd", metrics=["accuracy"])
history = model.fit(x_train, y_train, validation_data=(x_test, y_test), batch_size=batch_size, epochs=1)

noncudnn_model = build_model(allow_cudnn_kernel=False)
noncudnn_model.set_weights(model.get_weights())
noncudnn_model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), optimizer="sgd", metrics=["accuracy"]
)
noncudnn_history = noncudnn_model.fit(
    x_train, y_train, validation_data=(x_test, y_test), batch_size=batch_size, epochs=1
)

with keras.device("CPU:0"):
    cpu_model = build_model(allow_cudnn_kernel=True)
    cpu_model.set_weights(model.get_weights())
    result = keras.ops.argmax(cpu_model.predict_on_batch(keras.ops.expand_dims(sample, 0)), axis=1)
    print(f"Predicted result is: {keras.ops.convert_to_numpy(result)}, target result is: {sample_label}")
    plt.imshow(sample, cmap=plt.get_cmap("gray"))
plt.close("all")


# RNNs with list/dict inputs, or nested inputs
@keras.saving.register_keras_serializable()
class NestedCell(keras.layers.Layer):
    def __init__(self, unit_1, unit_2, unit_3, **kwargs):
        self.unit_1 = unit_1
        self.unit_2 = unit_2
        self.unit_3 = unit_3
        self.state_size = [[unit_1], [unit_2, unit_3]]
        self.output_size = [[unit_1], [unit_2, unit_3]]
        super().__init__(**kwargs)

    def build(self, input_shapes):
        # [(batch, i1), (batch, i2, i3)]
        i1 = input_shapes[0][1]
        i2, i3 = input_shapes[1][1], input_shapes[1][2]
        self.kernel_1 = self.add_weight(shape=(i1, self.unit_1), initializer="uniform", name="kernel_1")
        self.kernel_2_3 = self.add_weight(
            shape=(i2, i3, self.unit_2, self.unit_3), initializer="uniform", name="kernel_2_3"
        )

    def call(self, inputs, states):
        input_1, input_2 = keras.tree.flatten(inputs)
        s1, s2 = states
        output_1 = keras.ops.matmul(input_1, self.kernel_1)
        output_2_3 = keras.ops.einsum("bij,ijkl->bkl", input_2, self.kernel_2_3)
        state_1 = s1 + output_1
        state_2_3 = s2 + output_2_3
        return (output_1, output_2_3), (state_1, state_2_3)

    def get_config(self):
        return {"unit_1": self.unit_1, "unit_2": unit_2, "unit_3": self.unit_3}


unit_1, unit_2, unit_3 = 10, 20, 30
i1, i2, i3 = 32, 64, 32
batch_size = 64
num_batches = 2  # the guide: 10
timestep = 10  # the guide: 50

cell = NestedCell(unit_1, unit_2, unit_3)
rnn = keras.layers.RNN(cell)
input_1 = keras.Input((None, i1))
input_2 = keras.Input((None, i2, i3))
outputs = rnn((input_1, input_2))
model = keras.models.Model([input_1, input_2], outputs)
model.compile(optimizer="adam", loss="mse", metrics=["accuracy"])

input_1_data = np.random.random((batch_size * num_batches, timestep, i1))
input_2_data = np.random.random((batch_size * num_batches, timestep, i2, i3))
target_1_data = np.random.random((batch_size * num_batches, unit_1))
target_2_data = np.random.random((batch_size * num_batches, unit_2, unit_3))
input_data = [input_1_data, input_2_data]
target_data = [target_1_data, target_2_data]
nested_history = model.fit(input_data, target_data, batch_size=batch_size)
