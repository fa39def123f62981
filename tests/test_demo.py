"""The demo (`python -m rnnkit.demo`) and the MNIST loader it uses, without network access."""

import re
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import demo

PROGRESS = (
    r"(\d+)/\1 \[={30}\] - \d+s \d+ms/step - loss: \d+\.\d{4} - accuracy: [01]\.\d{4}"
    r" - val_loss: \d+\.\d{4} - val_accuracy: [01]\.\d{4}"
)


@pytest.fixture()
def offline(monkeypatch, tmp_path):
    """An empty RNNKIT_HOME (and HOME, so no ~/.keras cache is found) and no network."""
    home = tmp_path / "rnnkit_home"
    home.mkdir()
    monkeypatch.setenv("RNNKIT_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    calls = []

    def no_network(*args, **kwargs):
        calls.append(args)
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return home, calls


def fake_mnist(path, n_train=96, n_test=40, seed=0):
    """A small file with mnist.npz's keys, dtypes and image shape; the label is drawn as a bar."""
    rng = np.random.default_rng(seed)

    def images(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for image, label in zip(x, labels):
            image[2 + 2 * label : 4 + 2 * label, 4:24] = 255
        return x, labels

    (x_train, y_train), (x_test, y_test) = images(n_train), images(n_test)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return (x_train, y_train), (x_test, y_test)


def test_demo_offline_trains_and_reports(capsys):
    accuracy = demo.main(["--offline", "--epochs", "2"])
    out = capsys.readouterr().out
    assert isinstance(accuracy, float) and 0.0 <= accuracy <= 1.0
    assert "Data: 8x8 digits, 1500 training and 297 test sequences of 8 steps x 8 features" in out
    assert "Total params: 19,594" in out and "Non-trainable params: 128" in out
    bars = [line for line in out.splitlines() if re.fullmatch(PROGRESS, line)]
    assert len(bars) == 2 and all(line.startswith("24/24 ") for line in bars)
    assert re.search(r"^Epoch 2/2$", out, re.M)
    reported = re.search(r"^Test loss (\d+\.\d{4}), test accuracy (\d\.\d{4})$", out, re.M)
    assert reported and float(reported.group(2)) == pytest.approx(accuracy, abs=5e-5)
    prediction = re.search(r"^Predicted result is: \[(\d)\], target result is: (\d)$", out, re.M)
    assert prediction
    (_, _), (_, y_test) = rk.datasets.digits.load_data()
    assert int(prediction.group(2)) == y_test[0]


def test_demo_is_reproducible_with_a_seed(capsys):
    first = demo.main(["--offline", "--epochs", "1", "--seed", "3"])
    second = demo.main(["--offline", "--epochs", "1", "--seed", "3"])
    capsys.readouterr()
    assert first == second


def test_demo_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    target = tmp_path / "curves.png"
    demo.main(["--offline", "--epochs", "2", "--plot", str(target)])
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Saved the curves to {target}" in capsys.readouterr().out


def test_demo_plot_without_matplotlib_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    target = tmp_path / "curves.png"
    with pytest.raises(SystemExit) as raised:
        demo.main(["--offline", "--epochs", "1", "--plot", str(target)])
    assert "matplotlib" in str(raised.value.code) and "pip install" in str(raised.value.code)
    assert not target.exists()
    capsys.readouterr()


def test_mnist_offline_error_says_where_to_put_the_file(offline):
    home, calls = offline
    with pytest.raises(OSError) as raised:
        rk.datasets.mnist.load_data()
    message = str(raised.value)
    expected = str(home / "datasets" / "mnist.npz")
    assert expected in message and "mnist.npz" in message
    assert calls, "the loader should have tried to download"
    assert not list((home / "datasets").glob("*")), "no partial download may be left behind"


def test_mnist_loads_a_cached_file(offline):
    home, calls = offline
    (x_train, y_train), (x_test, y_test) = fake_mnist(home / "datasets" / "mnist.npz")
    (a, b), (c, d) = rk.datasets.mnist.load_data()
    assert not calls  # found in the cache: no download attempted
    for got, want in ((a, x_train), (b, y_train), (c, x_test), (d, y_test)):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)
    # An explicit path works as well.
    (a2, _), _ = rk.datasets.mnist.load_data(str(home / "datasets" / "mnist.npz"))
    np.testing.assert_array_equal(a2, x_train)


def test_demo_trains_on_a_cached_mnist(offline, capsys):
    home, _ = offline
    fake_mnist(home / "datasets" / "mnist.npz")
    accuracy = demo.main(["--epochs", "2"])
    out = capsys.readouterr().out
    assert "Data: MNIST, 96 training and 40 test sequences of 28 steps x 28 features" in out
    bars = [line for line in out.splitlines() if re.fullmatch(PROGRESS, line)]
    assert len(bars) == 2 and all(line.startswith("2/2 ") for line in bars)
    assert 0.0 <= accuracy <= 1.0
    assert re.search(r"^Predicted result is: \[\d\], target result is: \d$", out, re.M)


def test_demo_falls_back_to_the_digits_without_network(offline, capsys):
    accuracy = demo.main(["--epochs", "1"])
    out = capsys.readouterr().out
    assert "MNIST unavailable" in out and "using the bundled 8x8 digits" in out
    assert "Data: 8x8 digits" in out
    assert 0.0 <= accuracy <= 1.0
