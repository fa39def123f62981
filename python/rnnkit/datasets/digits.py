"""The 8×8 handwritten digits bundled with rnnkit: a real data set that needs no network.

Each image is read as a sequence of 8 rows of 8 pixels, the way the guide reads MNIST's 28 rows
of 28 pixels (see `data/README.md` for the source and license).
"""

import os

import numpy as np

_PATH = os.path.join(os.path.dirname(__file__), "data", "digits.npz")


def load_data(train_size=1500):
    """Loads the 1,797 digits as `(x_train, y_train), (x_test, y_test)`, like `mnist.load_data`.

    Args:
        train_size: How many of the samples (in their stored order) form the training set; the
            rest is the test set. The default gives 1,500 and 297.

    Returns:
        uint8 images `(n, 8, 8)` with pixels in 0..16, and uint8 labels `(n,)`.
    """
    with np.load(_PATH, allow_pickle=False) as data:
        images, labels = data["images"], data["labels"]
    if not 0 < train_size < len(images):
        raise ValueError(f"train_size: expected an integer in (0, {len(images)}), received {train_size}")
    return (images[:train_size], labels[:train_size]), (images[train_size:], labels[train_size:])
