"""Client: keras-io `examples/nlp/bidirectional_lstm_imdb.py` ("Bidirectional LSTM on IMDB"),
written again for rnnkit.

What differs from the example:
- the imports (`import rnnkit as keras`, `from rnnkit import layers`);
- the data: `keras.datasets.imdb.load_data(num_words=max_features)` downloads 25,000 + 25,000
  reviews; here `load_imdb_like` makes 400 + 100 reviews of the same form (object arrays of
  Python lists of word indices in [1, max_features), lengths 30 to 400, labels 0/1 as int64)
  in which a review's label decides how often it uses a small set of "positive" or "negative"
  words, so the model can learn it;
- the history of `fit` is kept in `history`.
The model (Embedding(20000, 128) -> 2 x Bidirectional(LSTM(64)) -> Dense sigmoid on variable
length int32 inputs), `keras.preprocessing.sequence.pad_sequences(..., maxlen=200)`, compile
and `fit(batch_size=32, epochs=2, validation_data=...)` follow the example.
"""

import numpy as np

import rnnkit as keras
from rnnkit import layers

max_features = 20000  # the vocabulary size
maxlen = 200  # words kept per review

inputs = keras.Input(shape=(None,), dtype="int32")
x = layers.Embedding(max_features, 128)(inputs)
x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
x = layers.Bidirectional(layers.LSTM(64))(x)
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, outputs)
model.summary()


def load_imdb_like(num_words, train=400, test=100, seed=1337):
    """Stands in for `imdb.load_data`: ((x_train, y_train), (x_test, y_test)) with x object
    arrays of lists of ints (1 starts a review as in IMDB) and y int64 labels."""
    rng = np.random.default_rng(seed)
    positive_words = rng.choice(np.arange(4, 200), 20, replace=False)
    negative_words = rng.choice(np.arange(200, 400), 20, replace=False)

    def reviews(count):
        labels = rng.integers(0, 2, count)
        texts = []
        for label in labels:
            length = int(rng.integers(30, 400))
            words = rng.integers(4, num_words, length)
            marked = rng.random(length) < 0.15
            words[marked] = rng.choice(positive_words if label else negative_words, marked.sum())
            texts.append([1] + words.tolist())
        sequences = np.empty(count, dtype=object)
        sequences[:] = texts
        return sequences, labels.astype("int64")

    return reviews(train), reviews(test)


(x_train, y_train), (x_val, y_val) = load_imdb_like(num_words=max_features)
print(len(x_train), "Training sequences")
print(len(x_val), "Validation sequences")
# Reviews over 200 words lose their start, shorter ones get zeros in front.
x_train = keras.preprocessing.sequence.pad_sequences(x_train, maxlen=maxlen)
x_val = keras.preprocessing.sequence.pad_sequences(x_val, maxlen=maxlen)

model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val))
