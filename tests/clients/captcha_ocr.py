"""Client: keras-io `examples/vision/captcha_ocr.py` ("OCR model for reading Captchas", the
Keras 3 version), written again for rnnkit.

What differs from the example:
- the imports (`import rnnkit as keras`, `from rnnkit import layers, ops`);
- the data: 192 generated 200x50 grey images of 5-character labels over the example's 19
  characters (each character drawn as a short horizontal bar at a height of its own, in its
  fifth of the width) instead of the 1,040 downloaded PNG files, so nothing is downloaded; the
  `tf.data` pipelines become a `keras.utils.PyDataset` of the same `{"image", "label"}` batches;
- `ctc_batch_cost` calls `keras.ops.ctc_loss` instead of TensorFlow's `ctc_loss` (whose blank is
  the last class): the blank here is class 0, the index StringLookup keeps for unknown
  characters, which no label uses and which `ops.ctc_decode` takes as the blank by default;
  `ctc_label_dense_to_sparse` is not needed (the loss reads padded labels and their lengths);
- `tf.sparse.to_dense` and `tf.strings.reduce_join` become numpy and `"".join`;
- 3 epochs instead of 100, no plots; the histories and decoded texts are kept for the test.
The model (two Conv2D + MaxPooling2D blocks, Reshape, Dense, Dropout, two Bidirectional LSTMs,
a softmax Dense, the CTC endpoint layer adding its loss), its compile without a loss, the
EarlyStopping callback, the prediction model cut from the trained one and the greedy decoding
follow the example.
"""

import numpy as np

import rnnkit as keras
from rnnkit import layers, ops

characters = sorted("2345678bcdefgmnpwxy")
batch_size = 16
img_width = 200
img_height = 50
downsample_factor = 4
max_length = 5


def make_image(label, rng):
    """A 50x200 image (stored as the example's transposed 200x50) showing `label`."""
    img = rng.uniform(0, 0.1, size=(img_height, img_width)).astype("float32")
    for position, char in enumerate(label):
        row = 2 + 2 * characters.index(char)
        start = position * (img_width // max_length) + 8
        img[row : row + 2, start : start + 24] = 1.0
    return img


rng = np.random.default_rng(0)
labels = ["".join(rng.choice(characters, max_length)) for _ in range(192)]
images = np.stack([make_image(label, rng) for label in labels])

print("Number of images found: ", len(images))
print("Number of unique characters: ", len(characters))
print("Characters present: ", characters)

# Mapping characters to integers
char_to_num = layers.StringLookup(vocabulary=list(characters), mask_token=None)

# Mapping integers back to original characters
num_to_char = layers.StringLookup(vocabulary=char_to_num.get_vocabulary(), mask_token=None, invert=True)


def split_data(images, labels, train_size=0.9, shuffle=True):
    # 1. Get the total size of the dataset
    size = len(images)
    # 2. Make an indices array and shuffle it, if required
    indices = ops.arange(size)
    if shuffle:
        keras.random.shuffle(indices)
    # 3. Get the size of training samples
    train_samples = int(size * train_size)
    # 4. Split data into training and validation sets
    x_train, y_train = images[indices[:train_samples]], labels[indices[:train_samples]]
    x_valid, y_valid = images[indices[train_samples:]], labels[indices[train_samples:]]
    return x_train, x_valid, y_train, y_valid


x_train, x_valid, y_train, y_valid = split_data(images, np.array(labels))


def encode_single_sample(img, label):
    # The example reads, decodes and resizes a PNG here; the images are made at their size.
    # Transpose the image because we want the time dimension to correspond to its width.
    img = ops.transpose(img[:, :, None], axes=[1, 0, 2])
    # Map the characters in label to numbers
    label = char_to_num(np.array(list(label)))
    return {"image": ops.convert_to_numpy(img), "label": ops.convert_to_numpy(label)}


class Batches(keras.utils.PyDataset):
    """What `Dataset.from_tensor_slices((x, y)).map(encode_single_sample).batch(batch_size)` gives."""

    def __init__(self, x, y):
        super().__init__()
        self.samples = [encode_single_sample(img, label) for img, label in zip(x, y)]

    def __len__(self):
        return -(-len(self.samples) // batch_size)

    def __getitem__(self, index):
        chunk = self.samples[index * batch_size : (index + 1) * batch_size]
        return {key: np.stack([s[key] for s in chunk]) for key in ("image", "label")}


train_dataset = Batches(x_train, y_train)
validation_dataset = Batches(x_valid, y_valid)


def ctc_batch_cost(y_true, y_pred, input_length, label_length):
    label_length = ops.cast(ops.squeeze(label_length, axis=-1), dtype="int32")
    input_length = ops.cast(ops.squeeze(input_length, axis=-1), dtype="int32")
    y_pred = ops.log(y_pred + keras.backend.epsilon())
    return ops.expand_dims(ops.ctc_loss(y_true, y_pred, label_length, input_length, mask_index=0), 1)


class CTCLayer(layers.Layer):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.loss_fn = ctc_batch_cost

    def call(self, y_true, y_pred):
        # Compute the training-time loss value and add it
        # to the layer using `self.add_loss()`.
        batch_len = ops.cast(ops.shape(y_true)[0], dtype="int64")
        input_length = ops.cast(ops.shape(y_pred)[1], dtype="int64")
        label_length = ops.cast(ops.shape(y_true)[1], dtype="int64")

        input_length = input_length * ops.ones(shape=(batch_len, 1), dtype="int64")
        label_length = label_length * ops.ones(shape=(batch_len, 1), dtype="int64")

        loss = self.loss_fn(y_true, y_pred, input_length, label_length)
        self.add_loss(loss)

        # At test time, just return the computed predictions
        return y_pred


def build_model():
    # Inputs to the model
    input_img = layers.Input(shape=(img_width, img_height, 1), name="image", dtype="float32")
    labels = layers.Input(name="label", shape=(None,), dtype="float32")

    # First conv block
    x = layers.Conv2D(
        32,
        (3, 3),
        activation="relu",
        kernel_initializer="he_normal",
        padding="same",
        name="Conv1",
    )(input_img)
    x = layers.MaxPooling2D((2, 2), name="pool1")(x)

    # Second conv block
    x = layers.Conv2D(
        64,
        (3, 3),
        activation="relu",
        kernel_initializer="he_normal",
        padding="same",
        name="Conv2",
    )(x)
    x = layers.MaxPooling2D((2, 2), name="pool2")(x)

    # We have used two max pool with pool size and strides 2.
    # Hence, downsampled feature maps are 4x smaller. The number of
    # filters in the last layer is 64. Reshape accordingly before
    # passing the output to the RNN part of the model
    new_shape = ((img_width // 4), (img_height // 4) * 64)
    x = layers.Reshape(target_shape=new_shape, name="reshape")(x)
    x = layers.Dense(64, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2)(x)

    # RNNs
    x = layers.Bidirectional(layers.LSTM(128, return_sequences=True, dropout=0.25))(x)
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True, dropout=0.25))(x)

    # Output layer
    x = layers.Dense(len(char_to_num.get_vocabulary()) + 1, activation="softmax", name="dense2")(x)

    # Add CTC layer for calculating CTC loss at each step
    output = CTCLayer(name="ctc_loss")(labels, x)

    # Define the model
    model = keras.models.Model(inputs=[input_img, labels], outputs=output, name="ocr_model_v1")
    # Optimizer
    opt = keras.optimizers.Adam()
    # Compile the model and return
    model.compile(optimizer=opt)
    return model


# Get the model
model = build_model()
model.summary()

epochs = 3  # the example: 100
early_stopping_patience = 10
# Add early stopping
early_stopping = keras.callbacks.EarlyStopping(
    monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True
)

# Train the model
history = model.fit(
    train_dataset,
    validation_data=validation_dataset,
    epochs=epochs,
    callbacks=[early_stopping],
)

# Get the prediction model by extracting layers till the output layer
prediction_model = keras.models.Model(model.input[0], model.get_layer(name="dense2").output)
prediction_model.summary()


# A utility function to decode the output of the network
def decode_batch_predictions(pred):
    input_len = np.ones(pred.shape[0]) * pred.shape[1]
    # Use greedy search. For complex tasks, you can use beam search
    results = ops.ctc_decode(pred, sequence_lengths=input_len, strategy="greedy")[0][0]
    # The decoded labels, padded with -1, kept up to max_length
    dense_results = ops.convert_to_numpy(results)[:, :max_length]
    # Iterate over the results and get back the text
    output_text = []
    for res in dense_results:
        res = "".join(num_to_char(res[res >= 0]).tolist())
        output_text.append(res)
    return output_text


#  Let's check results on some validation samples
for batch in [validation_dataset[0]]:
    batch_images = batch["image"]
    batch_labels = batch["label"]

    preds = prediction_model.predict(batch_images)
    pred_texts = decode_batch_predictions(preds)

    orig_texts = []
    for label in batch_labels:
        label = "".join(num_to_char(label).tolist())
        orig_texts.append(label)

    for i in range(len(pred_texts)):
        print(f"Prediction: {pred_texts[i]}   target: {orig_texts[i]}")
