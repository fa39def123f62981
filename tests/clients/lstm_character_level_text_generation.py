"""Client: keras-io `examples/generative/lstm_character_level_text_generation.py`
("Character-level text generation with LSTM"), written again for rnnkit.

What differs from the example:
- the imports (`import rnnkit as keras`, `from rnnkit import layers`);
- the data: the example downloads Nietzsche's text (600,893 characters) with
  `keras.utils.get_file`; here the corpus is six sentences drawn at random 160 times, about
  6,500 characters (then lowercased as in the example), which gives ~2,170 training windows
  (with fewer, 5 batches an epoch, RMSprop at 0.01 oscillates: on Keras too);
- the sizes: 2 epochs instead of 40, and 100 generated characters per diversity instead of
  400 (each one is a `predict` call);
- the loss of every epoch is kept in `losses` and the generated texts in `generated_texts`.
The vectorisation (windows of 40 characters every 3, one-hot bool arrays), the model
(Input -> LSTM(128) -> Dense softmax), RMSprop(learning_rate=0.01), the temperature `sample`
helper and the per-epoch generation loop over diversities 0.2, 0.5, 1.0 and 1.2 follow the
example.
"""

import random
import sys

import numpy as np

import rnnkit as keras
from rnnkit import layers

SENTENCES = [
    "The sun rises over the quiet hills.",
    "A small boat drifts on the grey sea.",
    "Every thinker doubts what he loves most.",
    "The old man walks to the market at dawn.",
    "Truth is a woman, and the philosopher a poor lover.",
    "Rain falls softly on the sleeping town.",
]
rng = random.Random(11)
text = " ".join(rng.choice(SENTENCES) for _ in range(160)).lower()
print("corpus length:", len(text))

chars = sorted(set(text))
print("total chars:", len(chars))
char_indices = {c: i for i, c in enumerate(chars)}
indices_char = {i: c for i, c in enumerate(chars)}

maxlen = 40  # window length
step = 3  # distance between windows
sentences, next_chars = [], []
for i in range(0, len(text) - maxlen, step):
    sentences.append(text[i : i + maxlen])
    next_chars.append(text[i + maxlen])
print("nb sequences:", len(sentences))

print("Vectorization...")
x = np.zeros((len(sentences), maxlen, len(chars)), dtype=np.bool_)
y = np.zeros((len(sentences), len(chars)), dtype=np.bool_)
for i, sentence in enumerate(sentences):
    for t, char in enumerate(sentence):
        x[i, t, char_indices[char]] = 1
    y[i, char_indices[next_chars[i]]] = 1

model = keras.Sequential(
    [
        keras.Input(shape=(maxlen, len(chars))),
        layers.LSTM(128),
        layers.Dense(len(chars), activation="softmax"),
    ]
)
optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
model.compile(loss="categorical_crossentropy", optimizer=optimizer)


def sample(preds, temperature=1.0):
    """Draws an index from `preds` reweighted by the temperature."""
    preds = np.asarray(preds).astype("float64")
    preds = np.log(preds) / temperature
    weights = np.exp(preds)
    preds = weights / np.sum(weights)
    return np.argmax(np.random.multinomial(1, preds, 1))


epochs = 2  # the example: 40
batch_size = 128
generate_length = 100  # the example: 400
losses, generated_texts = [], []

for epoch in range(epochs):
    history = model.fit(x, y, batch_size=batch_size, epochs=1)
    losses.append(history.history["loss"][0])
    print(f"Generating text after epoch: {epoch}")

    start_index = random.randint(0, len(text) - maxlen - 1)
    for diversity in [0.2, 0.5, 1.0, 1.2]:
        print("----- diversity:", diversity)
        sentence = text[start_index : start_index + maxlen]
        generated = ""
        print(f'----- Generating with seed: "{sentence}"')
        for _ in range(generate_length):
            x_pred = np.zeros((1, maxlen, len(chars)))
            for t, char in enumerate(sentence):
                x_pred[0, t, char_indices[char]] = 1.0
            preds = model.predict(x_pred, verbose=0)[0]
            next_char = indices_char[sample(preds, diversity)]
            sentence = sentence[1:] + next_char
            generated += next_char
        sys.stdout.write(generated + "\n")
        generated_texts.append(generated)
