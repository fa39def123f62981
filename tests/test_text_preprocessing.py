"""StringLookup, IntegerLookup and TextVectorization against Keras 3. Keras's lookup layers need
TensorFlow (absent from the test environment), so their outputs are golden values made by Keras
3.15.1 on TensorFlow 2.21 from the cases in tests/text_cases.py, with this script
(`/work/benchenv/bin/python make.py > golden.json`; GOLDEN below is that JSON):

    import json, os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    sys.path.insert(0, "/work/main/tests")
    import numpy as np, keras
    from text_cases import CASES
    out = {}
    for name, cls, kwargs, data, x in CASES:
        layer = getattr(keras.layers, cls)(**kwargs)
        if data is not None:
            layer.adapt(np.array(data) if cls != "TextVectorization" else data)
        y = layer(np.array(x))
        y = np.asarray(y)
        text = lambda v: v.decode() if isinstance(v, bytes) else v
        y = [[text(v) for v in r] if isinstance(r, list) else text(r) for r in y.tolist()]
        config = {k: v for k, v in layer.get_config().items() if k not in ("name", "trainable", "dtype")}
        vocab = [v.decode() if isinstance(v, bytes) else v for v in layer.get_vocabulary()]
        dtype = str(np.asarray(layer(np.array(x))).dtype)
        out[name] = {"vocabulary": vocab, "output": y, "dtype": dtype, "config": config}
    print(json.dumps(out, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
"""

import numpy as np
import pytest

import rnnkit as rk
from rnnkit import layers
from text_cases import CASES

GOLDEN = {
    "s_vocab_int": {
        "vocabulary": ["[UNK]", "a", "b", "c"],
        "output": [[1, 0], [3, 2]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": ["a", "b", "c"],
            "vocabulary_size": 4,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_vocab_mask": {
        "vocabulary": ["", "[UNK]", "a", "b", "c"],
        "output": [[2, 0, 1], [4, 3, 2]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": "",
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": ["a", "b", "c"],
            "vocabulary_size": 5,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_vocab_no_oov": {
        "vocabulary": ["a", "b", "c"],
        "output": [[0, 1, 2]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 0,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": ["a", "b", "c"],
            "vocabulary_size": 3,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_vocab_special": {
        "vocabulary": ["", "[UNK]", "x", "y"],
        "output": [3, 2, 0, 1],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": "",
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": ["", "[UNK]", "x", "y"],
            "vocabulary_size": 4,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_adapt_int": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [[1, 3, 2, 0], [7, 4, 5, 6]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_adapt_1d": {
        "vocabulary": ["[UNK]", "e", "b", "a", "d", "c"],
        "output": [1, 3, 0],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 6,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_adapt_max": {
        "vocabulary": ["[UNK]", "a", "e", "b"],
        "output": [[1, 3, 2, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": 4,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 4,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_adapt_mask_max": {
        "vocabulary": ["", "[UNK]", "a", "e", "b"],
        "output": [[2, 4, 3, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": 5,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": "",
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 5,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_multi_hot": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [[0, 1, 0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 1, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "multi_hot",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_multi_hot_mask": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c"],
        "output": [[0, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 1]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": "",
            "output_mode": "multi_hot",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 7,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_count": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [[0, 2, 0, 1, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0, 1, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "count",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_count_1d": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [1, 2, 0, 1, 0, 0, 0, 0],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "count",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_one_hot": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [[0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "one_hot",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_one_hot_col": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [[0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "one_hot",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_tf_idf": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [
            [0.0, 1.3862943649291992, 0.0, 0.8472978472709656, 0.0, 0.0, 0.0, 0.0],
            [2.009573221206665, 0.0, 1.0986123085021973, 0.0, 0.0, 0.0, 0.0, 0.0],
        ],
        "dtype": "float32",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "tf_idf",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_tf_idf_1d": {
        "vocabulary": ["[UNK]", "b", "a", "d", "c"],
        "output": [[0.0, 0.0, 1.0986123085021973, 1.3862943649291992, 0.0]],
        "dtype": "float32",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "tf_idf",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 5,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_tf_idf_pad": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [[0.0, 0.6931471824645996, 0.0, 0.8472978472709656, 0.0, 0.0, 0.0, 0.0, 0.0]],
        "dtype": "float32",
        "config": {
            "invert": False,
            "max_tokens": 9,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "tf_idf",
            "sparse": False,
            "pad_to_max_tokens": True,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_pad_multi_hot": {
        "vocabulary": ["[UNK]", "a", "e", "b", "f", "d", "c", ""],
        "output": [[0, 1, 0, 0, 0, 0, 0, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": 8,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "multi_hot",
            "sparse": False,
            "pad_to_max_tokens": True,
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 8,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_tf_idf_given": {
        "vocabulary": ["[UNK]", "a", "b", "c"],
        "output": [[3.0, 0.5, 1.5, 0.0]],
        "dtype": "float32",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "tf_idf",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": [0.5, 1.5, 2.5],
            "vocabulary": ["a", "b", "c"],
            "vocabulary_size": 4,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_invert": {
        "vocabulary": ["[UNK]", "a", "b", "c"],
        "output": [["[UNK]", "a", "b"], ["c", "[UNK]", "[UNK]"]],
        "dtype": "object",
        "config": {
            "invert": True,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": ["a", "b", "c"],
            "vocabulary_size": 4,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "s_invert_mask": {
        "vocabulary": ["<m>", "[UNK]", "a", "b"],
        "output": ["<m>", "[UNK]", "a", "b", "[UNK]"],
        "dtype": "object",
        "config": {
            "invert": True,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": "[UNK]",
            "mask_token": "<m>",
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "idf_weights": None,
            "vocabulary": ["a", "b"],
            "vocabulary_size": 4,
            "oov_method": "floormod",
            "salt": None,
            "encoding": "utf-8",
        },
    },
    "i_vocab_int": {
        "vocabulary": [-1, 12, 36, 1138, 42],
        "output": [[1, 3, 4], [4, 0, 2]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": -1,
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": [12, 36, 1138, 42],
            "vocabulary_size": 5,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "i_oov2": {
        "vocabulary": [-1, -1, 12, 36, 1138, 42],
        "output": [[2, 0, 1, 1, 1]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 2,
            "oov_token": -1,
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": [12, 36, 1138, 42],
            "vocabulary_size": 6,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "i_mask0": {
        "vocabulary": [0, -1, 12, 36],
        "output": [[2, 0, 3, 1]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": -1,
            "mask_token": 0,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": [12, 36],
            "vocabulary_size": 4,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "i_adapt": {
        "vocabulary": [-1, 5, 3, 7, 9],
        "output": [[1, 3, 2, 4, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": -1,
            "mask_token": None,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 5,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "i_adapt_max_mask": {
        "vocabulary": [0, -1, 5, 7],
        "output": [[2, 3, 0, 1]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": 4,
            "num_oov_indices": 1,
            "oov_token": -1,
            "mask_token": 0,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 4,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "i_multi_hot": {
        "vocabulary": [-1, -1, 5, 9, 8, 7],
        "output": [[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 2,
            "oov_token": -1,
            "mask_token": None,
            "output_mode": "multi_hot",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 6,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "i_count": {
        "vocabulary": [-1, 5, 9, 8, 7],
        "output": [[1, 2, 0, 0, 0], [0, 0, 3, 0, 0]],
        "dtype": "int64",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": -1,
            "mask_token": None,
            "output_mode": "count",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 5,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "i_tf_idf": {
        "vocabulary": [-1, 5, 9, 8, 7],
        "output": [
            [0.6475667953491211, 1.021651268005371, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.3862943649291992, 0.6931471824645996, 0.0],
        ],
        "dtype": "float32",
        "config": {
            "invert": False,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": -1,
            "mask_token": None,
            "output_mode": "tf_idf",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": None,
            "vocabulary_size": 5,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "i_invert": {
        "vocabulary": [0, -1, 12, 36, 42],
        "output": [[0, -1, 12, 36, 42, -1, -1]],
        "dtype": "int64",
        "config": {
            "invert": True,
            "max_tokens": None,
            "num_oov_indices": 1,
            "oov_token": -1,
            "mask_token": 0,
            "output_mode": "int",
            "sparse": False,
            "pad_to_max_tokens": False,
            "vocabulary_dtype": "int64",
            "idf_weights": None,
            "vocabulary": [12, 36, 42],
            "vocabulary_size": 5,
            "oov_method": "floormod",
            "salt": None,
        },
    },
    "t_int": {
        "vocabulary": [
            "",
            "[UNK]",
            "the",
            "cat",
            "ü",
            "É",
            "sat",
            "on",
            "mat",
            "dogdays",
            "dog",
            "d",
            "c",
            "bird",
            "b",
            "a",
        ],
        "output": [[2, 3, 1, 2, 10], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [5, 14, 1, 0, 0]],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 16,
        },
    },
    "t_int_len": {
        "vocabulary": [
            "",
            "[UNK]",
            "the",
            "cat",
            "ü",
            "É",
            "sat",
            "on",
            "mat",
            "dogdays",
            "dog",
            "d",
            "c",
            "bird",
            "b",
            "a",
        ],
        "output": [[2, 3, 1, 2], [1, 1, 1, 0], [0, 0, 0, 0], [5, 14, 1, 0]],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": 4,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 16,
        },
    },
    "t_int_len_long": {
        "vocabulary": ["", "[UNK]", "the", "cat", "ü", "É"],
        "output": [
            [2, 3, 1, 2, 1, 0, 0, 0],
            [1, 1, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0],
            [5, 1, 1, 0, 0, 0, 0, 0],
        ],
        "dtype": "int64",
        "config": {
            "max_tokens": 6,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": 8,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 6,
        },
    },
    "t_lower": {
        "vocabulary": [
            "",
            "[UNK]",
            "the",
            "cat",
            "ü",
            "É",
            "sat",
            "on",
            "mat.",
            "dog-days:",
            "dog,",
            "d",
            "c",
            "bird!",
            "b",
            "a",
            "&",
        ],
        "output": [[2, 3, 1, 2, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [5, 14, 1, 0, 0]],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 17,
        },
    },
    "t_strip": {
        "vocabulary": [
            "",
            "[UNK]",
            "the",
            "ü",
            "É",
            "sat",
            "on",
            "mat",
            "dog",
            "d",
            "cat",
            "c",
            "bird",
            "b",
            "The",
            "Dogdays",
            "CAT",
            "A",
        ],
        "output": [[2, 10, 1, 2, 8], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [4, 13, 1, 0, 0]],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 18,
        },
    },
    "t_none": {
        "vocabulary": [
            "",
            "[UNK]",
            "the",
            "ü",
            "É",
            "sat",
            "on",
            "mat.",
            "dog,",
            "d",
            "cat",
            "c",
            "bird!",
            "b",
            "The",
            "Dog-days:",
            "CAT",
            "A",
            "&",
        ],
        "output": [[2, 10, 1, 2, 1], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [4, 13, 1, 0, 0]],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": None,
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 19,
        },
    },
    "t_character": {
        "vocabulary": [
            "",
            "[UNK]",
            " ",
            "t",
            "a",
            "h",
            "e",
            "d",
            "o",
            "c",
            "s",
            "g",
            "b",
            "ü",
            "É",
            "y",
            "r",
            "n",
            "m",
            "i",
            "\t",
        ],
        "output": [
            [3, 5, 6, 2, 9, 4, 3, 2, 4, 17, 7, 2],
            [1, 17, 10, 6, 6, 17, 2, 1, 8, 16, 7, 10],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [14, 2, 12, 2, 9, 7, 0, 0, 0, 0, 0, 0],
        ],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "character",
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": 12,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 21,
        },
    },
    "t_no_split": {
        "vocabulary": ["", "[UNK]", "a b", "d", "c"],
        "output": [[2], [4], [1], [0]],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": None,
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 5,
        },
    },
    "t_ngrams2": {
        "vocabulary": [
            "",
            "[UNK]",
            "the",
            "the cat",
            "cat",
            "ü É",
            "ü",
            "É",
            "the mat",
            "the dog",
            "the bird",
            "sat on",
            "sat",
            "on the",
            "on",
            "mat",
            "dogdays ü",
            "dogdays",
            "dog the",
            "dog",
            "d",
            "cat the",
            "cat sat",
            "c d",
            "c",
            "bird",
            "b c",
            "b",
            "a b",
            "a",
        ],
        "output": [
            [2, 4, 1, 2, 19, 3, 1, 1, 9],
            [1, 1, 1, 1, 1, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0],
            [7, 27, 1, 1, 1, 0, 0, 0, 0],
        ],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": 2,
            "output_mode": "int",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 30,
        },
    },
    "t_ngrams_tuple": {
        "vocabulary": [
            "[UNK]",
            "the",
            "cat",
            "ü",
            "É",
            "the dog the",
            "the cat the",
            "the cat sat",
            "sat on the",
            "sat",
            "on the mat",
            "on",
            "mat",
            "dogdays ü É",
            "dogdays",
            "dog the cat",
            "dog",
            "d",
            "cat the bird",
            "cat sat on",
            "c",
            "bird",
            "b c d",
            "b",
            "a b c",
            "a",
        ],
        "output": [
            [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0],
        ],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": [1, 3],
            "output_mode": "multi_hot",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 26,
        },
    },
    "t_multi_hot": {
        "vocabulary": [
            "[UNK]",
            "the",
            "cat",
            "ü",
            "É",
            "sat",
            "on",
            "mat",
            "dogdays",
            "dog",
            "d",
            "c",
            "bird",
            "b",
            "a",
        ],
        "output": [
            [1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
        ],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "multi_hot",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 15,
        },
    },
    "t_count": {
        "vocabulary": ["[UNK]", "the", "cat", "ü", "É", "sat", "on"],
        "output": [[2, 2, 1, 0, 0, 0, 0], [3, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0], [2, 0, 0, 0, 1, 0, 0]],
        "dtype": "int64",
        "config": {
            "max_tokens": 7,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "count",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 7,
        },
    },
    "t_count_pad": {
        "vocabulary": [
            "[UNK]",
            "the",
            "cat",
            "ü",
            "É",
            "sat",
            "on",
            "mat",
            "dogdays",
            "dog",
            "d",
            "c",
            "bird",
            "b",
            "a",
        ],
        "output": [
            [1, 2, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ],
        "dtype": "int64",
        "config": {
            "max_tokens": 30,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "count",
            "output_sequence_length": None,
            "pad_to_max_tokens": True,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 15,
        },
    },
    "t_tf_idf": {
        "vocabulary": [
            "[UNK]",
            "the",
            "cat",
            "ü",
            "É",
            "sat",
            "on",
            "mat",
            "dogdays",
            "dog",
            "d",
            "c",
            "bird",
            "b",
            "a",
        ],
        "output": [
            [
                1.0627102851867676,
                1.6945956945419312,
                0.8472978472709656,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                1.0986123085021973,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            [3.1881308555603027, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [
                1.0627102851867676,
                0.0,
                0.0,
                0.0,
                1.0986123085021973,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                1.0986123085021973,
                0.0,
            ],
        ],
        "dtype": "float32",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "tf_idf",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 15,
        },
    },
    "t_tf_idf_ngrams": {
        "vocabulary": ["[UNK]", "the", "the cat", "cat", "ü É", "ü", "É", "the mat", "the dog", "the bird"],
        "output": [
            [
                4.05936336517334,
                1.6945956945419312,
                0.8472978472709656,
                0.8472978472709656,
                0.0,
                0.0,
                0.0,
                0.0,
                1.0986123085021973,
                0.0,
            ],
            [5.074204444885254, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            [4.05936336517334, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0986123085021973, 0.0, 0.0, 0.0],
        ],
        "dtype": "float32",
        "config": {
            "max_tokens": 10,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": 2,
            "output_mode": "tf_idf",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": None,
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 10,
        },
    },
    "t_vocab": {
        "vocabulary": ["", "[UNK]", "the", "cat", "dog"],
        "output": [[2, 3, 1, 2, 4, 0], [1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0]],
        "dtype": "int64",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "int",
            "output_sequence_length": 6,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": ["the", "cat", "dog"],
            "idf_weights": None,
            "encoding": "utf-8",
            "vocabulary_size": 5,
        },
    },
    "t_vocab_tf_idf": {
        "vocabulary": ["[UNK]", "the", "cat", "dog"],
        "output": [
            [1.7000000476837158, 0.20000000298023224, 2.0, 3.0],
            [5.100000381469727, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
            [5.100000381469727, 0.0, 0.0, 0.0],
        ],
        "dtype": "float32",
        "config": {
            "max_tokens": None,
            "standardize": "lower_and_strip_punctuation",
            "split": "whitespace",
            "ngrams": None,
            "output_mode": "tf_idf",
            "output_sequence_length": None,
            "pad_to_max_tokens": False,
            "sparse": False,
            "ragged": False,
            "vocabulary": ["the", "cat", "dog"],
            "idf_weights": [0.1, 2.0, 3.0],
            "encoding": "utf-8",
            "vocabulary_size": 4,
        },
    },
}

BASE = {"name", "trainable", "dtype"}


def build(cls, kwargs, data):
    layer = getattr(layers, cls)(**kwargs)
    if data is not None:
        layer.adapt(np.array(data) if cls != "TextVectorization" else data)
    return layer


@pytest.mark.parametrize("name, cls, kwargs, data, x", CASES, ids=[c[0] for c in CASES])
def test_matches_keras_golden(name, cls, kwargs, data, x):
    want = GOLDEN[name]
    layer = build(cls, kwargs, data)
    assert layer.get_vocabulary() == want["vocabulary"]
    assert layer.vocabulary_size() == len(want["vocabulary"])
    got = np.asarray(layer(np.array(x)))
    if want["dtype"] == "object":
        assert got.tolist() == want["output"]
    else:
        assert got.dtype == np.dtype(want["dtype"])
        np.testing.assert_allclose(got, np.array(want["output"], want["dtype"]), rtol=1e-6, atol=1e-6)
    config = {k: v for k, v in layer.get_config().items() if k not in BASE}
    learned = data is not None
    if learned:
        # rnnkit keeps a learned vocabulary in the config (Keras saves it as an asset).
        assert config.pop("has_input_vocabulary") is False
        assert config.pop("vocabulary") == layer.get_vocabulary()
        config.pop("idf_weights")
    keras_config = {k: v for k, v in want["config"].items() if not (learned and k in ("vocabulary", "idf_weights"))}
    if isinstance(keras_config.get("ngrams"), list):
        config["ngrams"] = list(config["ngrams"])
    assert config == keras_config
    # The config alone rebuilds the layer, learned vocabulary and IDF weights included.
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_vocabulary() == layer.get_vocabulary()
    np.testing.assert_array_equal(np.asarray(clone(np.array(x))), got)


def test_adapt_over_batches_equals_adapt_over_array():
    rows = np.array([["a", "b", "a"], ["c", "a", "d"], ["d", "d", "e"], ["b", "f", "a"]])
    whole = layers.StringLookup(output_mode="tf_idf")
    whole.adapt(rows)
    batched = layers.StringLookup(output_mode="tf_idf")
    batched.adapt(iter([rows[:1], rows[1:3], rows[3:]]))
    assert batched.get_vocabulary() == whole.get_vocabulary()
    np.testing.assert_array_equal(np.asarray(batched(rows)), np.asarray(whole(rows)))
    text = layers.TextVectorization()
    text.adapt(b for b in (np.array(["A b", "c a"]), np.array(["a d"])))
    assert text.get_vocabulary() == ["", "[UNK]", "a", "d", "c", "b"]


def test_vocabulary_file_bytes_inputs_and_set_vocabulary(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("x\ny\nz\n", encoding="utf-8")
    layer = layers.StringLookup(vocabulary=str(path))
    assert layer.get_vocabulary() == ["[UNK]", "x", "y", "z"]
    np.testing.assert_array_equal(np.asarray(layer(np.array([b"z", b"q"]))), [3, 0])
    np.testing.assert_array_equal(np.asarray(layer("y")), 2)
    layer.set_vocabulary(["q"])
    assert layer.get_vocabulary() == ["[UNK]", "q"]
    text = layers.TextVectorization()
    text.set_vocabulary(["hello", "world"])
    np.testing.assert_array_equal(np.asarray(text(["Hello, World! bye"])), [[2, 3, 1]])


def test_callable_standardize_and_split():
    text = layers.TextVectorization(
        standardize=lambda s: np.char.upper(s), split=lambda s: [t.split("-") for t in s.tolist()]
    )
    text.adapt(["a-b-b", "c-b"])
    assert text.get_vocabulary() == ["", "[UNK]", "B", "C", "A"]
    np.testing.assert_array_equal(np.asarray(text(["c-a", "b"])), [[3, 4], [2, 0]])


def test_outputs_feed_an_embedding_and_adapted_layers_save_and_load(tmp_path):
    text = layers.TextVectorization(output_sequence_length=5)
    text.adapt(["the cat sat", "the dog ran", "a cat"])
    ids = text(["the cat ran far", "dog"])
    lookup = layers.IntegerLookup(mask_token=0)
    lookup.adapt(np.array([[3, 9, 9], [4, 3, 0]]))
    model = rk.Sequential(
        [rk.Input((5,), dtype="int64"), lookup, layers.Embedding(6, 3, mask_zero=True), layers.LSTM(2)]
    )
    x = np.array([[3, 9, 4, 0, 0], [9, 9, 7, 3, 0]])
    want = np.asarray(model(x))
    model.save(tmp_path / "lookup.keras")
    loaded = rk.models.load_model(tmp_path / "lookup.keras")
    np.testing.assert_allclose(np.asarray(loaded(x)), want, rtol=1e-6)
    assert loaded.layers[0].get_vocabulary() == lookup.get_vocabulary()
    embedded = layers.Embedding(text.vocabulary_size(), 4)(ids)
    assert embedded.shape == (2, 5, 4)


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="sparse"):
        layers.StringLookup(output_mode="multi_hot", sparse=True)
    with pytest.raises(ValueError, match="ragged"):
        layers.TextVectorization(ragged=True)
    with pytest.raises(ValueError, match="output_mode"):
        layers.StringLookup(output_mode="bag")
    with pytest.raises(ValueError, match="output_mode"):
        layers.StringLookup(invert=True, output_mode="count")
    with pytest.raises(ValueError, match="max_tokens"):
        layers.StringLookup(max_tokens=1)
    with pytest.raises(ValueError, match="pad_to_max_tokens"):
        layers.StringLookup(pad_to_max_tokens=True)
    with pytest.raises(ValueError, match="num_oov_indices"):
        layers.IntegerLookup(num_oov_indices=-1)
    with pytest.raises(ValueError, match="idf_weights"):
        layers.StringLookup(vocabulary=["a"], idf_weights=[1.0])
    with pytest.raises(ValueError, match="idf_weights"):
        layers.StringLookup(vocabulary=["a"], output_mode="tf_idf")
    with pytest.raises(ValueError, match="repeated"):
        layers.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="mask_token"):
        layers.StringLookup(vocabulary=["a", ""], mask_token="")
    with pytest.raises(ValueError, match="max_tokens=3"):
        layers.StringLookup(vocabulary=["a", "b", "c"], max_tokens=3)
    with pytest.raises(ValueError, match="does not exist"):
        layers.StringLookup(vocabulary="/nonexistent/vocab.txt")
    with pytest.raises(ValueError, match="standardize"):
        layers.TextVectorization(standardize="upper")
    with pytest.raises(ValueError, match="split"):
        layers.TextVectorization(split="comma")
    with pytest.raises(ValueError, match="ngrams"):
        layers.TextVectorization(ngrams="2")
    with pytest.raises(ValueError, match="output_sequence_length"):
        layers.TextVectorization(output_mode="count", output_sequence_length=3)
    with pytest.raises(ValueError, match="Cannot adapt"):
        layers.StringLookup(vocabulary=["a"]).adapt(["a"])
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        layers.StringLookup(vocabulary=["a"], num_oov_indices=0)(np.array(["b"]))
    with pytest.raises(RuntimeError, match="set the vocabulary"):
        layers.StringLookup(output_mode="count")(np.array(["a"]))
    with pytest.raises(NotImplementedError, match="FarmHash"):
        layers.StringLookup(vocabulary=["a"], num_oov_indices=2)(np.array(["b"]))
    with pytest.raises(ValueError, match="last dimension of 1"):
        layers.TextVectorization(vocabulary=["a"])(np.array([["a", "b"]]))
