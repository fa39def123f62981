"""The main job: the guide's MNIST model, trained and evaluated with rnnkit.

`python -m rnnkit.demo` (or `rnnkit-demo`) builds the guide's model, LSTM(64) → BatchNormalization
→ Dense(10), trained with sparse cross-entropy from logits, each image read row by row as a
sequence. It uses MNIST when `mnist.npz` is available (cache folder, `--mnist PATH`, or a
download) and otherwise the 8×8 digits bundled with rnnkit, so it runs with no network. It
prints Keras's progress bar, the test accuracy, a sample prediction and the time per step, and
with `--plot FILE.png` draws the loss and accuracy curves (needs matplotlib).
"""

import argparse
import time

import numpy as np

import rnnkit as keras


def load(mnist_path, offline):
    """`(name, (x_train, y_train), (x_test, y_test))` scaled to [0, 1]."""
    if not offline:
        try:
            (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data(mnist_path)
            return "MNIST", (x_train / 255.0, y_train), (x_test / 255.0, y_test)
        except OSError as err:
            print(f"MNIST unavailable ({str(err).split('(')[0].strip()}); using the bundled 8x8 digits.")
    (x_train, y_train), (x_test, y_test) = keras.datasets.digits.load_data()
    return "8x8 digits", (x_train / 16.0, y_train), (x_test / 16.0, y_test)


def build_model(input_dim, units=64, output_size=10, allow_cudnn_kernel=True):
    """The guide's `build_model`: the fused LSTM layer, or RNN(LSTMCell) (the same fused kernel)."""
    if allow_cudnn_kernel:
        lstm_layer = keras.layers.LSTM(units, input_shape=(None, input_dim))
    else:
        lstm_layer = keras.layers.RNN(keras.layers.LSTMCell(units), input_shape=(None, input_dim))
    return keras.models.Sequential([lstm_layer, keras.layers.BatchNormalization(), keras.layers.Dense(output_size)])


def plot(history, path):
    """Saves the loss and accuracy curves of a `History` to `path`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install 'rnnkit[plot]'") from None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix in ("", "val_"):
            if prefix + key in history.history:
                ax.plot(
                    np.arange(1, len(history.history[prefix + key]) + 1),
                    history.history[prefix + key],
                    label=prefix + key,
                )
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"Saved the curves to {path}")


def main(argv=None):
    """Trains, evaluates and reports; returns the test accuracy."""
    parser = argparse.ArgumentParser(description="Train the Keras RNN guide's MNIST model with rnnkit.")
    parser.add_argument("--epochs", type=int, default=None, help="default: 1 on MNIST (as the guide), 20 on the digits")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--optimizer", default=None, help="default: sgd on MNIST (as the guide), adam on the digits")
    parser.add_argument("--mnist", default="mnist.npz", help="path or cache name of mnist.npz")
    parser.add_argument("--offline", action="store_true", help="use the bundled digits without looking for MNIST")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="FILE.png", help="save the loss/accuracy curves")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    np.random.seed(args.seed)
    name, (x_train, y_train), (x_test, y_test) = load(args.mnist, args.offline)
    is_mnist = name == "MNIST"
    epochs = args.epochs or (1 if is_mnist else 20)
    optimizer = args.optimizer or ("sgd" if is_mnist else "adam")
    print(
        f"Data: {name}, {len(x_train)} training and {len(x_test)} test sequences of {x_train.shape[1]} steps x "
        f"{x_train.shape[2]} features"
    )

    model = build_model(x_train.shape[2])
    model.summary()
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=optimizer,
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(x_train, y_train, validation_data=(x_test, y_test), batch_size=args.batch_size, epochs=epochs)
    elapsed = time.perf_counter() - start
    steps = epochs * -(-len(x_train) // args.batch_size)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Test loss {loss:.4f}, test accuracy {accuracy:.4f}")
    print(f"Training: {elapsed:.2f} s for {steps} steps, {elapsed / steps * 1e3:.2f} ms per step (incl. validation)")

    sample, sample_label = x_test[0], y_test[0]
    with keras.device("CPU:0"):
        cpu_model = build_model(x_train.shape[2])
        cpu_model.set_weights(model.get_weights())
        result = keras.ops.argmax(cpu_model.predict_on_batch(keras.ops.expand_dims(sample, 0)), axis=1)
    print(f"Predicted result is: {np.asarray(result)}, target result is: {sample_label}")
    if args.plot:
        plot(history, args.plot)
    return accuracy


if __name__ == "__main__":
    main()
