"""Tests of rk.utils's data utilities against Keras 3.

Functions that run on Keras's numpy code path are compared with Keras (JAX backend) on the same
inputs. Those that need TensorFlow in Keras (timeseries_dataset_from_array, split_dataset return
tf.data datasets) are compared with golden values; each carries the script that produced them
with tensorflow-cpu 2.21 and Keras 3.15.
"""

import concurrent.futures
import hashlib
import io
import os
import tarfile
import threading
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import rnnkit as rk  # noqa: E402
from rnnkit import utils  # noqa: E402


def batches_as_lists(dataset):
    return [[t.tolist() for t in batch] if isinstance(batch, tuple) else batch.tolist() for batch in dataset]


# --- timeseries_dataset_from_array -----------------------------------------------------------
# Golden values from:
#   import numpy as np, keras  # keras 3.15.1, tensorflow-cpu 2.21.0
#   def dump(ds):
#       return [[t.numpy().tolist() for t in b] if isinstance(b, tuple) else b.numpy().tolist() for b in ds]
#   dump(keras.utils.timeseries_dataset_from_array(<the arguments of each case>))
TIMESERIES_CASES = {
    "targets_stride_rate_start_end": (
        (np.arange(20), np.arange(20) * 10, 5),
        dict(sequence_stride=2, sampling_rate=2, batch_size=3, start_index=1, end_index=18),
        [
            [[[1, 3, 5, 7, 9], [3, 5, 7, 9, 11], [5, 7, 9, 11, 13]], [10, 30, 50]],
            [[[7, 9, 11, 13, 15], [9, 11, 13, 15, 17]], [70, 90]],
        ],
    ),
    "no_targets_2d": (
        (np.arange(16).reshape(8, 2), None, 3),
        dict(batch_size=4),
        [
            [[[0, 1], [2, 3], [4, 5]], [[2, 3], [4, 5], [6, 7]], [[4, 5], [6, 7], [8, 9]], [[6, 7], [8, 9], [10, 11]]],
            [[[8, 9], [10, 11], [12, 13]], [[10, 11], [12, 13], [14, 15]]],
        ],
    ),
    "short_targets_unbatched": (
        (np.arange(12), np.arange(4), 3),
        dict(batch_size=None),
        [[[0, 1, 2], 0], [[1, 2, 3], 1], [[2, 3, 4], 2], [[3, 4, 5], 3]],
    ),
}


@pytest.mark.parametrize("name", sorted(TIMESERIES_CASES))
def test_timeseries_matches_keras(name):
    args, kwargs, expected = TIMESERIES_CASES[name]
    dataset = utils.timeseries_dataset_from_array(*args, **kwargs)
    assert batches_as_lists(dataset) == expected
    assert len(dataset) == len(expected)
    assert batches_as_lists(dataset) == expected  # a second epoch reads the same batches


def test_timeseries_shuffle_gives_keras_windows_in_a_new_order_each_epoch():
    # Keras: timeseries_dataset_from_array(np.arange(30), np.arange(30), 4, sequence_stride=3,
    # batch_size=2, shuffle=True, seed=7) yields windows starting at 21 15 | 24 0 | 12 18 | 6 3 | 9
    # (its tf.data shuffle buffer reorders them further, so only the set is compared).
    keras_starts = [21, 15, 24, 0, 12, 18, 6, 3, 9]
    dataset = utils.timeseries_dataset_from_array(
        np.arange(30), np.arange(30), 4, sequence_stride=3, batch_size=2, shuffle=True, seed=7
    )
    epochs = []
    for _ in range(2):
        windows, targets = zip(*dataset)
        windows, targets = np.concatenate(windows), np.concatenate(targets)
        np.testing.assert_array_equal(windows, targets[:, None] + np.arange(4))  # pairs stay aligned
        assert sorted(targets.tolist()) == sorted(keras_starts)
        assert [len(w) for w in zip(*dataset)][0] == len(dataset) == 5
        epochs.append(targets.tolist())
    assert epochs[0] != epochs[1]
    again = utils.timeseries_dataset_from_array(
        np.arange(30), np.arange(30), 4, sequence_stride=3, batch_size=2, shuffle=True, seed=7
    )
    assert np.concatenate([t for _, t in again]).tolist() == epochs[0]  # the seed fixes the orders


def test_timeseries_keeps_the_dtype_and_the_trailing_axes():
    data = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    x, y = next(iter(utils.timeseries_dataset_from_array(data, data[:, 0], 10, batch_size=8)))
    assert x.shape == (8, 10, 3) and x.dtype == np.float32 and y.shape == (8,)
    np.testing.assert_array_equal(x[3], data[3:13])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sampling_rate=0), r"sampling_rate: expected an int in \[1, 9\], received 0"),
        (dict(sequence_stride=10), r"sequence_stride: expected an int in \[1, 9\], received 10"),
        (dict(start_index=-1), r"start_index: expected an int in \[0, 9\], received -1"),
        (dict(start_index=4, end_index=3), r"end_index: expected an int in \[5, 9\], received 3"),
        (dict(end_index=10), r"end_index: expected an int in \[1, 9\], received 10"),
        (dict(batch_size=0), r"batch_size: expected an int in \[1, inf\], received 0"),
    ],
)
def test_timeseries_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match="timeseries_dataset_from_array: " + message):
        utils.timeseries_dataset_from_array(np.arange(10), None, 2, **kwargs)


def test_preprocessing_aliases():
    assert rk.preprocessing.timeseries_dataset_from_array is utils.timeseries_dataset_from_array
    assert rk.preprocessing.sequence.pad_sequences is utils.pad_sequences


# --- pad_sequences -----------------------------------------------------------------------------


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 2, 4])
def test_pad_sequences_matches_keras(padding, truncating, maxlen):
    sequences = [[1, 2, 3], [4], [], [5, 6, 7, 8, 9]]
    kwargs = dict(maxlen=maxlen, padding=padding, truncating=truncating, value=-1)
    ours, theirs = utils.pad_sequences(sequences, **kwargs), keras.utils.pad_sequences(sequences, **kwargs)
    assert ours.dtype == theirs.dtype == np.int32
    np.testing.assert_array_equal(ours, theirs)


def test_pad_sequences_elements_with_shape_and_float_dtype():
    sequences = [np.ones((2, 3)), np.arange(9.0).reshape(3, 3)]
    ours = utils.pad_sequences(sequences, dtype="float32", padding="post", value=0.5)
    theirs = keras.utils.pad_sequences(sequences, dtype="float32", padding="post", value=0.5)
    assert ours.shape == (2, 3, 3) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("dtype", [object, "<U5"])
def test_pad_sequences_strings_match_keras(dtype):
    sequences = [["the", "cat"], ["a"], ["big", "red", "dog"]]
    kwargs = dict(maxlen=2, dtype=dtype, value="<pad>", truncating="post")
    np.testing.assert_array_equal(
        utils.pad_sequences(sequences, **kwargs), keras.utils.pad_sequences(sequences, **kwargs)
    )


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (([[1]],), dict(padding="middle"), "padding: expected 'pre' or 'post', received 'middle'"),
        (([[1]],), dict(truncating="both"), "truncating: expected 'pre' or 'post', received 'both'"),
        (([[1], 5],), {}, "sequences: expected a list of sequences, received 5 at position 1"),
        (
            ([["a"]],),
            dict(value="x"),
            "dtype: expected object or a string dtype for the string value 'x', received 'int32'",
        ),
        (([[1]],), dict(maxlen=-1), "maxlen: expected None or an int >= 0, received -1"),
        (
            ([[[1, 2]], [[1, 2, 3]]],),
            {},
            r"sequences: expected elements of shape \(2,\), received \(3,\) in the sequence at position 1",
        ),
    ],
)
def test_pad_sequences_rejects_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match="pad_sequences: " + message):
        utils.pad_sequences(*args, **kwargs)


# --- to_categorical, normalize -----------------------------------------------------------------


@pytest.mark.parametrize("x, num_classes", [([0, 2, 1, 2], None), ([[1], [3]], 5), (np.array([[0, 1], [1, 0]]), 3)])
def test_to_categorical_matches_keras(x, num_classes):
    ours, theirs = utils.to_categorical(x, num_classes), keras.utils.to_categorical(x, num_classes)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


def test_to_categorical_rejects_ids_out_of_range():
    with pytest.raises(
        ValueError, match=r"to_categorical: x: expected class ids in \[0, 3\), received ids from -1 to 2"
    ):
        utils.to_categorical([2, -1], 3)


@pytest.mark.parametrize("order", [1, 2])
def test_normalize_matches_keras(order):
    x = np.array([[3.0, -4.0, 0.0], [0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
    np.testing.assert_allclose(utils.normalize(x, order=order), keras.utils.normalize(x, order=order))
    # Along axis 0 (Keras's numpy path mishandles axis=0, so against the definition).
    np.testing.assert_allclose(utils.normalize(x, axis=0), x / np.where((n := np.linalg.norm(x, axis=0)) == 0, 1, n))


def test_normalize_is_differentiable_on_tensors():
    x = rk.Variable(np.array([[3.0, 4.0]]))
    with rk.GradientTape() as tape:
        y = utils.normalize(x)[0, 0]
    assert isinstance(y, rk.Tensor)
    # d(x0 / |x|)/dx = (1/|x| - x0 x / |x|^3) = [0.2 - 9/125, -12/125]
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [[0.2 - 9 / 125, -12 / 125]])


# --- split_dataset -----------------------------------------------------------------------------
# Golden values from:
#   left, right = keras.utils.split_dataset(<dataset>, <sizes>, ...)  # keras 3.15.1, tensorflow-cpu 2.21.0
#   [[int(t) for t in s] for s in left], ...


def test_split_dataset_shuffled_tuple_matches_keras():
    # keras.utils.split_dataset((np.arange(10), np.arange(10) * 2), left_size=0.7, shuffle=True, seed=3)
    left, right = utils.split_dataset((np.arange(10), np.arange(10) * 2), left_size=0.7, shuffle=True, seed=3)
    assert [[int(t) for t in s] for s in left] == [[1, 2], [5, 10], [6, 12], [0, 0], [9, 18], [4, 8], [7, 14]]
    assert [[int(t) for t in s] for s in right] == [[2, 4], [8, 16], [3, 6]]
    assert (len(left), len(right)) == (7, 3)


def test_split_dataset_array_and_sizes_match_keras():
    # keras.utils.split_dataset(np.arange(12).reshape(6, 2), right_size=2)
    left, right = utils.split_dataset(np.arange(12).reshape(6, 2), right_size=2)
    assert [s.tolist() for s in left] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert [s.tolist() for s in right] == [[8, 9], [10, 11]]
    # keras.utils.split_dataset(np.arange(10), left_size=3, right_size=0.5)
    left, right = utils.split_dataset(np.arange(10), left_size=3, right_size=0.5)
    assert [int(s) for s in left] == [0, 1, 2] and [int(s) for s in right] == [5, 6, 7, 8, 9]


def test_split_dataset_batches_dicts():
    left, _ = utils.split_dataset({"a": np.arange(10), "b": np.ones((10, 2))}, left_size=5)
    batches = list(left.batch(2))
    assert len(left.batch(2)) == len(batches) == 3 and len(left.batch(2, drop_remainder=True)) == 2
    assert batches[-1]["a"].tolist() == [4] and batches[0]["b"].shape == (2, 2)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, "left_size and right_size: expected at least one, received None for both"),
        (dict(left_size=1.5), ValueError, r"left_size: expected a fraction in \(0, 1\), received 1.5"),
        (dict(right_size=10), ValueError, r"right_size: expected a count in \[1, 9\], received 10"),
        (dict(left_size="half"), TypeError, "left_size: expected an int, a float or None, received str"),
        (
            dict(left_size=6, right_size=5),
            ValueError,
            "left_size and right_size: expected two non-empty parts .* received 6 and 5",
        ),
        (
            dict(left_size=0.01),
            ValueError,
            "left_size and right_size: expected two non-empty parts .* received 0 and 10",
        ),
    ],
)
def test_split_dataset_rejects_bad_sizes(kwargs, error, message):
    with pytest.raises(error, match="split_dataset: " + message):
        utils.split_dataset(np.arange(10), **kwargs)


# --- PyDataset ---------------------------------------------------------------------------------


class Squares(utils.PyDataset):
    def __init__(self, count, delay_first=False, **kwargs):
        super().__init__(**kwargs)
        self.count, self.delay_first = count, delay_first
        self.threads = set()

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        self.threads.add(threading.get_ident())
        if self.delay_first and index == 0:
            threading.Event().wait(0.05)  # later batches finish first; the order must not change
        return np.full((2, 1), index), np.full((2,), index**2)


def test_pydataset_iterates_in_order_every_epoch():
    dataset = Squares(4)
    for _ in range(2):
        assert [int(y[0]) for _, y in dataset] == [0, 1, 4, 9]
    assert utils.Sequence is utils.PyDataset
    assert dataset.num_batches == 4 and (dataset.workers, dataset.use_multiprocessing, dataset.max_queue_size) == (
        1,
        False,
        10,
    )


def test_pydataset_workers_are_threads_and_keep_the_order():
    dataset = Squares(12, delay_first=True, workers=3, max_queue_size=4)
    assert [int(y[0]) for _, y in dataset] == [i * i for i in range(12)]
    assert threading.get_ident() not in dataset.threads and len(dataset.threads) > 1


def test_pydataset_without_length_is_endless():
    class Endless(utils.PyDataset):
        num_batches = None

        def __getitem__(self, index):
            return np.array([index])

    iterator = iter(Endless())
    assert [int(next(iterator)[0]) for _ in range(5)] == [0, 1, 2, 3, 4]


def test_pydataset_matches_keras_default_attributes():
    class Theirs(keras.utils.PyDataset):
        def __len__(self):
            return 1

    theirs = Theirs(workers=2, max_queue_size=3)
    ours = Squares(1, workers=2, max_queue_size=3)
    assert (ours.workers, ours.use_multiprocessing, ours.max_queue_size) == (
        theirs.workers,
        theirs.use_multiprocessing,
        theirs.max_queue_size,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(use_multiprocessing=True), "use_multiprocessing: expected False .*, received True"),
        (dict(workers=0), "workers: expected an int >= 1, received 0"),
        (dict(max_queue_size=0), "max_queue_size: expected an int >= 1, received 0"),
    ],
)
def test_pydataset_rejects_what_it_cannot_honour(kwargs, message):
    with pytest.raises(ValueError, match="PyDataset: " + message):
        Squares(2, **kwargs)


def test_pydataset_needs_getitem():
    class Empty(utils.PyDataset):
        def __len__(self):
            return 1

    with pytest.raises(NotImplementedError, match="Empty must implement __getitem__"):
        list(Empty())


# --- pack / unpack -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [(np.ones(2),), ([np.ones(2), np.zeros(2)],), (1, 2), (1, 2, 3), (1, None, 3)],
)
def test_pack_x_y_sample_weight_matches_keras(args):
    assert repr(utils.pack_x_y_sample_weight(*args)) == repr(keras.utils.pack_x_y_sample_weight(*args))


@pytest.mark.parametrize("data", [np.ones(2), (1,), (1, 2), [1, 2, 3], {"x": 1}])
def test_unpack_x_y_sample_weight_matches_keras(data):
    assert repr(utils.unpack_x_y_sample_weight(data)) == repr(keras.utils.unpack_x_y_sample_weight(data))


def test_unpack_rejects_long_tuples():
    with pytest.raises(
        ValueError, match=r"data: expected x, \(x,\), \(x, y\) or \(x, y, sample_weight\), received a tuple of 4"
    ):
        utils.unpack_x_y_sample_weight((1, 2, 3, 4))


# --- Progbar -----------------------------------------------------------------------------------


def test_progbar_averages_like_keras(capsys):
    ours = utils.Progbar(4, verbose=2, stateful_metrics=["acc"])
    theirs = keras.utils.Progbar(4, verbose=2, stateful_metrics=["acc"])
    for bar in (ours, theirs):
        for step in range(3):
            bar.add(1, [("loss", float(step)), ("acc", float(step))])
        bar.add(1, [("acc", 9.0)])
    ours_line, theirs_line = capsys.readouterr().out.splitlines()
    assert ours_line.startswith("4/4 - ") and ours_line.endswith("/step - loss: 1.0000 - acc: 9.0000")
    assert ours_line.split("step")[-1] == theirs_line.split("step")[-1]


def test_progbar_default_shows_values_as_given_and_counts_without_target(capsys):
    bar = utils.Progbar(None, interval=0)
    bar.update(3, [("loss", 2.0)])
    bar.update(5, [("loss", 4.0)], finalize=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].strip().startswith("3/Unknown") and lines[0].endswith("loss: 2.0000")
    assert lines[1].strip().startswith("5/Unknown") and lines[1].endswith("loss: 4.0000")


def test_progbar_bar_reaches_the_end(capsys):
    bar = utils.Progbar(10, width=10, interval=0)
    bar.update(5)
    bar.add(5)
    first, last = capsys.readouterr().out.splitlines()
    assert "5/10 [====>.....] - ETA:" in first and "10/10 [==========] - " in last


def test_progbar_rejects_both_metric_lists():
    with pytest.raises(ValueError, match="stateful_metrics and stateless_metrics: expected at most one"):
        utils.Progbar(1, stateful_metrics=["a"], stateless_metrics=["b"])


# --- get_file ----------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path):
    """A 'remote' folder reached through file:// URLs, so the tests need no network."""
    remote = tmp_path / "remote"
    remote.mkdir()

    def url(name, content):
        (remote / name).write_bytes(content)
        return (remote / name).as_uri()

    return url


def test_get_file_downloads_once_into_the_cache(served, tmp_path):
    origin = served("data.csv", b"a,b\n1,2\n")
    cache = tmp_path / "cache"
    path = utils.get_file(origin=origin, cache_dir=str(cache))
    assert path == str(cache / "datasets" / "data.csv") and open(path, "rb").read() == b"a,b\n1,2\n"
    (tmp_path / "keras").mkdir()  # Keras falls back to /tmp/.keras for a folder that does not exist
    keras_path = keras.utils.get_file(origin=origin, cache_dir=str(tmp_path / "keras"))
    assert os.path.relpath(keras_path, tmp_path / "keras") == os.path.relpath(path, cache)
    os.remove(origin[len("file://") :])  # from now on only the cache has it
    assert utils.get_file("data.csv", origin, cache_dir=str(cache)) == path
    with pytest.raises(OSError, match="copy it to " + str(cache / "other" / "data.csv")):
        utils.get_file("data.csv", origin, cache_dir=str(cache), cache_subdir="other")


def test_get_file_default_cache_is_rnnkit_home(served, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_HOME", str(tmp_path / "home"))
    path = utils.get_file("x.txt", served("x.txt", b"x"), cache_subdir="sub")
    assert path == str(tmp_path / "home" / "sub" / "x.txt")


def test_get_file_checks_hashes(served, tmp_path):
    content = b"weights"
    origin = served("w.bin", content)
    sha256, md5 = hashlib.sha256(content).hexdigest(), hashlib.md5(content).hexdigest()
    path = utils.get_file("w.bin", origin, file_hash=sha256, cache_dir=str(tmp_path))
    assert utils.get_file("w.bin", origin, md5_hash=md5, cache_dir=str(tmp_path)) == path
    with open(path, "wb") as f:
        f.write(b"stale")  # a cached file that does not match is downloaded again
    assert open(utils.get_file("w.bin", origin, file_hash=sha256, cache_dir=str(tmp_path)), "rb").read() == content
    with pytest.raises(
        ValueError, match=f"get_file: file_hash: expected {'0' * 64} \\(auto\\), received a different file"
    ):
        utils.get_file("w.bin", origin, file_hash="0" * 64, cache_dir=str(tmp_path), force_download=True)


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("fname", ["corpus.tgz", "corpus", None])
def test_get_file_extracts_where_keras_does(served, tmp_path, kind, fname):
    buffer = io.BytesIO()
    if kind == "zip":
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("text/a.txt", "hello")
    else:
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            info = tarfile.TarInfo("text/a.txt")
            info.size = 5
            archive.addfile(info, io.BytesIO(b"hello"))
    origin = served(f"corpus.{kind}", buffer.getvalue())
    ours = utils.get_file(fname, origin, extract=True, cache_dir=str(tmp_path / "ours"))
    (tmp_path / "keras").mkdir()
    theirs = keras.utils.get_file(fname, origin, extract=True, cache_dir=str(tmp_path / "keras"))
    assert os.path.relpath(ours, tmp_path / "ours") == os.path.relpath(theirs, tmp_path / "keras")
    assert open(os.path.join(ours, "text", "a.txt")).read() == "hello"


def test_get_file_offline_names_the_url_and_the_path(tmp_path):
    origin = (tmp_path / "missing" / "imdb.npz").as_uri()
    target = tmp_path / "datasets" / "imdb.npz"
    with pytest.raises(OSError, match=f"could not download {origin} .*copy it to {target}"):
        utils.get_file("imdb.npz", origin, cache_dir=str(tmp_path))
    assert not target.exists() and os.listdir(tmp_path / "datasets") == []  # no partial file


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(origin="https://example.com/"), "fname: expected a file name when origin has none"),
        (dict(fname=os.path.join("a", "b.txt"), origin="https://example.com/b.txt"), "fname: expected a file name"),
    ],
)
def test_get_file_rejects_bad_names(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match="get_file: " + message):
        utils.get_file(cache_dir=str(tmp_path), **kwargs)


def test_registry_is_reexported_as_in_keras():
    for name in (
        "CustomObjectScope",
        "custom_object_scope",
        "get_custom_objects",
        "get_registered_name",
        "get_registered_object",
        "register_keras_serializable",
        "serialize_keras_object",
        "deserialize_keras_object",
    ):
        assert hasattr(keras.utils, name)
        assert getattr(rk.utils, name) is getattr(rk.saving, name)


def test_existing_utilities_are_kept():
    for name in ("set_random_seed", "clear_session", "custom_object_scope"):
        assert callable(getattr(rk.utils, name))
    rk.utils.set_random_seed(3)
    first = rk.random.generator().standard_normal()
    rk.utils.set_random_seed(3)
    assert rk.random.generator().standard_normal() == first


def test_datasets_are_read_concurrently_without_sharing_state():
    dataset = utils.timeseries_dataset_from_array(np.arange(100), None, 5, batch_size=7)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first, second = pool.map(batches_as_lists, [dataset, dataset])
    assert first == second and len(first) == len(dataset)
