"""Client: keras-io `examples/nlp/lstm_seq2seq.py` ("Character-level recurrent
sequence-to-sequence model"), written again for rnnkit.

What differs from the example:
- the imports (`import rnnkit as keras`);
- the data: the example downloads `fra-eng.zip` from manythings.org with
  `keras.utils.get_file` and reads the lines of `fra.txt` ("English<TAB>French<TAB>attribution");
  here `make_fra_lines` writes 300 such lines from a small phrase book (subject-verb pairs times
  objects, each with its French translation), so every following step - splitting the lines,
  the character sets, the one-hot encoder/decoder arrays with the decoder target one step
  ahead - runs as in the example on text of the same form;
- the sizes: 300 samples instead of 10,000 and 2 epochs instead of 100 (latent_dim stays 256,
  batch_size 64);
- the history of `fit` is kept in `history` and the decoded sentences in `decoded`.
The training model (encoder LSTM with return_state feeding its states to the decoder LSTM),
compile with rmsprop, fit with validation_split=0.2, `model.save("s2s_model.keras")`, loading it
back, the inference models built from `model.input[i]` and `model.layers[i].output` / calling
`model.layers[3]` on new Inputs, and the greedy decoding loop of 20 sentences follow the
example.
"""

import random

import numpy as np

import rnnkit as keras

batch_size = 64
epochs = 2  # the example: 100
latent_dim = 256
num_samples = 300  # the example: 10000

SUBJECT_VERBS = [
    ("I see", "Je vois"),
    ("I like", "J'aime"),
    ("I want", "Je veux"),
    ("You see", "Tu vois"),
    ("You like", "Tu aimes"),
    ("You want", "Tu veux"),
    ("He sees", "Il voit"),
    ("He likes", "Il aime"),
    ("He wants", "Il veut"),
    ("We see", "Nous voyons"),
    ("We like", "Nous aimons"),
    ("We want", "Nous voulons"),
]
OBJECTS = [
    ("the cat", "le chat"),
    ("the dog", "le chien"),
    ("the house", "la maison"),
    ("the car", "la voiture"),
    ("the book", "le livre"),
    ("the bread", "le pain"),
    ("the sea", "la mer"),
    ("the tree", "l'arbre"),
    ("a red apple", "une pomme rouge"),
    ("the small bird", "le petit oiseau"),
]


def make_fra_lines(count, seed=7):
    """Lines as in fra.txt: English, French and the attribution, separated by tabs."""
    rng = random.Random(seed)
    lines = []
    for n in range(count):
        (en_sv, fr_sv), (en_o, fr_o) = rng.choice(SUBJECT_VERBS), rng.choice(OBJECTS)
        mark, fr_mark = rng.choice([(".", "."), ("!", " !")])
        lines.append(
            f"{en_sv} {en_o}{mark}\t{fr_sv} {fr_o}{fr_mark}\tCC-BY 2.0 (France) Attribution: tatoeba.org #{1000 + n}"
        )
    return lines


lines = make_fra_lines(num_samples) + [""]  # the file ends with a newline

input_texts, target_texts = [], []
input_characters, target_characters = set(), set()
for line in lines[: min(num_samples, len(lines) - 1)]:
    input_text, target_text, _ = line.split("\t")
    target_text = "\t" + target_text + "\n"  # tab starts a target, newline ends it
    input_texts.append(input_text)
    target_texts.append(target_text)
    input_characters.update(input_text)
    target_characters.update(target_text)

input_characters = sorted(input_characters)
target_characters = sorted(target_characters)
num_encoder_tokens = len(input_characters)
num_decoder_tokens = len(target_characters)
max_encoder_seq_length = max(len(text) for text in input_texts)
max_decoder_seq_length = max(len(text) for text in target_texts)
print("Number of samples:", len(input_texts))
print("Number of unique input tokens:", num_encoder_tokens)
print("Number of unique output tokens:", num_decoder_tokens)
print("Max sequence length for inputs:", max_encoder_seq_length)
print("Max sequence length for outputs:", max_decoder_seq_length)

input_token_index = {char: i for i, char in enumerate(input_characters)}
target_token_index = {char: i for i, char in enumerate(target_characters)}

shape = (len(input_texts), max_encoder_seq_length, num_encoder_tokens)
encoder_input_data = np.zeros(shape, dtype="float32")
shape = (len(input_texts), max_decoder_seq_length, num_decoder_tokens)
decoder_input_data = np.zeros(shape, dtype="float32")
decoder_target_data = np.zeros(shape, dtype="float32")
for i, (input_text, target_text) in enumerate(zip(input_texts, target_texts)):
    for t, char in enumerate(input_text):
        encoder_input_data[i, t, input_token_index[char]] = 1.0
    encoder_input_data[i, len(input_text) :, input_token_index[" "]] = 1.0
    for t, char in enumerate(target_text):
        decoder_input_data[i, t, target_token_index[char]] = 1.0
        if t > 0:  # the target is the input shifted one step ahead
            decoder_target_data[i, t - 1, target_token_index[char]] = 1.0
    decoder_input_data[i, len(target_text) :, target_token_index[" "]] = 1.0
    decoder_target_data[i, len(target_text) - 1 :, target_token_index[" "]] = 1.0

# Training model: the encoder's final states start the decoder (teacher forcing).
encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
encoder = keras.layers.LSTM(latent_dim, return_state=True)
encoder_outputs, state_h, state_c = encoder(encoder_inputs)
encoder_states = [state_h, state_c]

decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
decoder_outputs = decoder_dense(decoder_outputs)
model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)

model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(
    [encoder_input_data, decoder_input_data],
    decoder_target_data,
    batch_size=batch_size,
    epochs=epochs,
    validation_split=0.2,
)
model.save("s2s_model.keras")

# Inference: reload, then cut the trained graph into an encoder and a one-step decoder.
model = keras.models.load_model("s2s_model.keras")

encoder_inputs = model.input[0]
encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output
encoder_states = [state_h_enc, state_c_enc]
encoder_model = keras.Model(encoder_inputs, encoder_states)

decoder_inputs = model.input[1]
decoder_state_input_h = keras.Input(shape=(latent_dim,))
decoder_state_input_c = keras.Input(shape=(latent_dim,))
decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
decoder_lstm = model.layers[3]
decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
decoder_states = [state_h_dec, state_c_dec]
decoder_dense = model.layers[4]
decoder_outputs = decoder_dense(decoder_outputs)
decoder_model = keras.Model([decoder_inputs] + decoder_states_inputs, [decoder_outputs] + decoder_states)

reverse_input_char_index = {i: char for char, i in input_token_index.items()}
reverse_target_char_index = {i: char for char, i in target_token_index.items()}


def decode_sequence(input_seq):
    """Greedy decoding of one encoded sentence, a character per decoder step."""
    states_value = encoder_model.predict(input_seq, verbose=0)
    target_seq = np.zeros((1, 1, num_decoder_tokens))
    target_seq[0, 0, target_token_index["\t"]] = 1.0
    decoded_sentence = ""
    while True:
        output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
        sampled_token_index = np.argmax(output_tokens[0, -1, :])
        sampled_char = reverse_target_char_index[sampled_token_index]
        decoded_sentence += sampled_char
        if sampled_char == "\n" or len(decoded_sentence) > max_decoder_seq_length:
            break
        target_seq = np.zeros((1, 1, num_decoder_tokens))
        target_seq[0, 0, sampled_token_index] = 1.0
        states_value = [h, c]
    return decoded_sentence


decoded = []
for seq_index in range(20):
    input_seq = encoder_input_data[seq_index : seq_index + 1]
    decoded_sentence = decode_sequence(input_seq)
    decoded.append(decoded_sentence)
    print("-")
    print("Input sentence:", input_texts[seq_index])
    print("Decoded sentence:", decoded_sentence)
