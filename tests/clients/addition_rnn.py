"""Client: keras-io `examples/nlp/addition_rnn.py` ("Sequence to sequence learning for
performing number addition"), written again for rnnkit.

What differs from the example:
- the imports (`import rnnkit as keras`, `from rnnkit import layers`);
- the sizes: 500 generated questions instead of 50,000 and 2 training iterations instead of
  29 (the example's own data is generated in the script, so nothing is downloaded);
- the history of each `fit` is kept in `histories` so that the test can compare losses, and
  the decoded validation samples in `checks`.
The model (LSTM(128) -> RepeatVector -> LSTM(128, return_sequences) -> Dense softmax), its
compile, the epoch loop of `fit(..., validation_data=...)` and the per-iteration decoding of 10
random validation questions with `predict` follow the example.
"""

import numpy as np

import rnnkit as keras
from rnnkit import layers

TRAINING_SIZE = 500  # the example: 50000
DIGITS = 3
REVERSE = True
MAXLEN = DIGITS + 1 + DIGITS  # "345+678"


class CharacterTable:
    """One-hot encoding of strings over a fixed character set, and the way back."""

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.char_indices = {c: i for i, c in enumerate(self.chars)}
        self.indices_char = {i: c for i, c in enumerate(self.chars)}

    def encode(self, text, num_rows):
        table = np.zeros((num_rows, len(self.chars)))
        for row, char in enumerate(text):
            table[row, self.char_indices[char]] = 1
        return table

    def decode(self, table, calc_argmax=True):
        if calc_argmax:
            table = table.argmax(axis=-1)
        return "".join(self.indices_char[int(i)] for i in table)


chars = "0123456789+ "
ctable = CharacterTable(chars)


def random_number():
    width = np.random.randint(1, DIGITS + 1)
    return int("".join(np.random.choice(list("0123456789")) for _ in range(width)))


questions, expected, seen = [], [], set()
print("Generating data...")
while len(questions) < TRAINING_SIZE:
    a, b = random_number(), random_number()
    pair = tuple(sorted((a, b)))  # a+b and b+a are the same question
    if pair in seen:
        continue
    seen.add(pair)
    query = f"{a}+{b}".ljust(MAXLEN)
    answer = str(a + b).ljust(DIGITS + 1)
    if REVERSE:
        query = query[::-1]
    questions.append(query)
    expected.append(answer)
print("Total questions:", len(questions))

print("Vectorization...")
x = np.zeros((len(questions), MAXLEN, len(chars)), dtype=np.bool_)
y = np.zeros((len(questions), DIGITS + 1, len(chars)), dtype=np.bool_)
for i, question in enumerate(questions):
    x[i] = ctable.encode(question, MAXLEN)
for i, answer in enumerate(expected):
    y[i] = ctable.encode(answer, DIGITS + 1)

order = np.arange(len(y))
np.random.shuffle(order)
x, y = x[order], y[order]

split_at = len(x) - len(x) // 10  # 10% held out for validation
x_train, x_val = x[:split_at], x[split_at:]
y_train, y_val = y[:split_at], y[split_at:]
print("Training Data:", x_train.shape, y_train.shape)
print("Validation Data:", x_val.shape, y_val.shape)

print("Build model...")
num_layers = 1
model = keras.Sequential()
model.add(layers.LSTM(128, input_shape=(MAXLEN, len(chars))))
model.add(layers.RepeatVector(DIGITS + 1))
for _ in range(num_layers):
    model.add(layers.LSTM(128, return_sequences=True))
model.add(layers.Dense(len(chars), activation="softmax"))
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.summary()

epochs = 3  # the example: 30 (range(1, epochs) gives the iterations)
batch_size = 32
histories, checks = [], []
for iteration in range(1, epochs):
    print()
    print("Iteration", iteration)
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=1, validation_data=(x_val, y_val))
    histories.append(history)
    for _ in range(10):
        ind = np.random.randint(0, len(x_val))
        rowx, rowy = x_val[np.array([ind])], y_val[np.array([ind])]
        preds = np.argmax(model.predict(rowx), axis=-1)
        q = ctable.decode(rowx[0])
        correct = ctable.decode(rowy[0])
        guess = ctable.decode(preds[0], calc_argmax=False)
        checks.append((q, correct, guess, preds.shape))
        print("Q", q[::-1] if REVERSE else q, "T", correct, ("☑ " if correct == guess else "☒ ") + guess)
