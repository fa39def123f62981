"""MNIST, with Keras's `load_data` signature, read from the standard `mnist.npz`."""

import os
import shutil
import tempfile
import urllib.error
import urllib.request

import numpy as np

URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


def cache_dir():
    """Where `mnist.npz` is looked for and downloaded to: `$RNNKIT_HOME/datasets`
    (default `~/.rnnkit/datasets`). Keras's own cache, `~/.keras/datasets`, is read too."""
    home = os.environ.get("RNNKIT_HOME", os.path.join(os.path.expanduser("~"), ".rnnkit"))
    return os.path.join(home, "datasets")


def _locate(path):
    if os.path.isabs(path) or os.path.exists(path):
        return path if os.path.exists(path) else None
    for folder in (cache_dir(), os.path.join(os.path.expanduser("~"), ".keras", "datasets")):
        candidate = os.path.join(folder, path)
        if os.path.exists(candidate):
            return candidate
    return None


def _download(target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(URL, timeout=30) as response:
            shutil.copyfileobj(response, out)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def load_data(path="mnist.npz"):
    """Loads MNIST as `(x_train, y_train), (x_test, y_test)`: uint8 images `(n, 28, 28)` and
    uint8 labels.

    Args:
        path: The file, or its name in the cache folder (see `cache_dir`). When it is found
            nowhere, it is downloaded into the cache folder.

    Raises:
        OSError: If the file is missing and cannot be downloaded; the message says where to
            put a copy.
    """
    found = _locate(os.fspath(path))
    if found is None:
        target = os.path.join(cache_dir(), os.path.basename(os.fspath(path)))
        try:
            _download(target)
        except (urllib.error.URLError, OSError) as err:
            raise OSError(
                f"MNIST is not available offline and could not be downloaded from {URL} ({err}). "
                f"Download mnist.npz on a machine with network access and copy it to {target} "
                "(or pass its location as `path=`). The bundled `rnnkit.datasets.digits` works offline."
            ) from None
        found = target
    with np.load(found, allow_pickle=False) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])
