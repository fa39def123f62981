"""Layer configurations, adapt data and inputs shared by tests/test_text_preprocessing.py and the
script (in that file's header) that made their Keras 3 / TensorFlow golden outputs."""

S = "StringLookup"
I = "IntegerLookup"
T = "TextVectorization"
WORDS = [["b", "a", "c"], ["a", "b", "d"], ["e", "e", "a"], ["f", "", "[UNK]"]]
TEXT = ["The cat sat on the mat.", "the dog, the CAT & the bird!", "A b  c\td", "Dog-days: ü É"]
QUERY = ["the cat and the dog", "unseen words only", "", "É b c-d"]

# (name, class, constructor arguments, adapt data or None, call input)
CASES = [
    ("s_vocab_int", S, {"vocabulary": ["a", "b", "c"]}, None, [["a", "z"], ["c", "b"]]),
    ("s_vocab_mask", S, {"vocabulary": ["a", "b", "c"], "mask_token": ""}, None, [["a", "", "q"], ["c", "b", "a"]]),
    ("s_vocab_no_oov", S, {"vocabulary": ["a", "b", "c"], "num_oov_indices": 0}, None, [["a", "b", "c"]]),
    ("s_vocab_special", S, {"vocabulary": ["", "[UNK]", "x", "y"], "mask_token": ""}, None, ["y", "x", "", "w"]),
    ("s_adapt_int", S, {}, WORDS, [["a", "b", "e", "zz"], ["", "f", "d", "c"]]),
    ("s_adapt_1d", S, {}, ["b", "a", "c", "a", "b", "d", "e", "e"], ["e", "a", "x"]),
    ("s_adapt_max", S, {"max_tokens": 4}, WORDS, [["a", "b", "e", "c"]]),
    ("s_adapt_mask_max", S, {"max_tokens": 5, "mask_token": ""}, WORDS, [["a", "b", "e", ""]]),
    ("s_multi_hot", S, {"output_mode": "multi_hot"}, WORDS, [["a", "b", "a"], ["zz", "c", "c"]]),
    ("s_multi_hot_mask", S, {"output_mode": "multi_hot", "mask_token": ""}, WORDS, [["a", "", "a"], ["zz", "c", ""]]),
    ("s_count", S, {"output_mode": "count"}, WORDS, [["a", "b", "a"], ["zz", "c", "zz"]]),
    ("s_count_1d", S, {"output_mode": "count"}, WORDS, ["a", "b", "a", "zz"]),
    ("s_one_hot", S, {"output_mode": "one_hot"}, WORDS, ["a", "b", "zz"]),
    ("s_one_hot_col", S, {"output_mode": "one_hot"}, WORDS, [["a"], ["e"], ["zz"]]),
    ("s_tf_idf", S, {"output_mode": "tf_idf"}, WORDS, [["a", "b", "a"], ["zz", "e", "zz"]]),
    ("s_tf_idf_1d", S, {"output_mode": "tf_idf"}, ["b", "a", "c", "a", "b", "d"], [["a", "d"]]),
    ("s_tf_idf_pad", S, {"output_mode": "tf_idf", "max_tokens": 9, "pad_to_max_tokens": True}, WORDS, [["a", "b"]]),
    ("s_pad_multi_hot", S, {"output_mode": "multi_hot", "max_tokens": 8, "pad_to_max_tokens": True}, WORDS, [["a"]]),
    (
        "s_tf_idf_given",
        S,
        {"output_mode": "tf_idf", "vocabulary": ["a", "b", "c"], "idf_weights": [0.5, 1.5, 2.5]},
        None,
        [["a", "b", "q", "q"]],
    ),
    ("s_invert", S, {"vocabulary": ["a", "b", "c"], "invert": True}, None, [[0, 1, 2], [3, 4, 9]]),
    ("s_invert_mask", S, {"vocabulary": ["a", "b"], "invert": True, "mask_token": "<m>"}, None, [0, 1, 2, 3, 7]),
    ("i_vocab_int", I, {"vocabulary": [12, 36, 1138, 42]}, None, [[12, 1138, 42], [42, 1000, 36]]),
    ("i_oov2", I, {"vocabulary": [12, 36, 1138, 42], "num_oov_indices": 2}, None, [[12, 1000, 1001, 7, -3]]),
    ("i_mask0", I, {"vocabulary": [12, 36], "mask_token": 0}, None, [[12, 0, 36, 5]]),
    ("i_adapt", I, {}, [[5, 5, 7], [9, 5, 7], [3, 3, 3]], [[5, 7, 3, 9, 4]]),
    ("i_adapt_max_mask", I, {"max_tokens": 4, "mask_token": 0}, [[5, 5, 7, 0], [9, 5, 7, 0]], [[5, 7, 0, 9]]),
    (
        "i_multi_hot",
        I,
        {"output_mode": "multi_hot", "num_oov_indices": 2},
        [[5, 5, 7], [9, 5, 8]],
        [[5, 6, 11], [9, 9, 8]],
    ),
    ("i_count", I, {"output_mode": "count"}, [[5, 5, 7], [9, 5, 8]], [[5, 5, 4], [9, 9, 9]]),
    ("i_tf_idf", I, {"output_mode": "tf_idf"}, [[5, 5, 7], [9, 5, 8]], [[5, 5, 4], [9, 9, 8]]),
    ("i_invert", I, {"vocabulary": [12, 36, 42], "invert": True, "mask_token": 0}, None, [[0, 1, 2, 3, 4, 5, 9]]),
    ("t_int", T, {}, TEXT, QUERY),
    ("t_int_len", T, {"output_sequence_length": 4}, TEXT, QUERY),
    ("t_int_len_long", T, {"output_sequence_length": 8, "max_tokens": 6}, TEXT, QUERY),
    ("t_lower", T, {"standardize": "lower"}, TEXT, QUERY),
    ("t_strip", T, {"standardize": "strip_punctuation"}, TEXT, QUERY),
    ("t_none", T, {"standardize": None}, TEXT, QUERY),
    ("t_character", T, {"split": "character", "output_sequence_length": 12}, TEXT, QUERY),
    ("t_no_split", T, {"split": None}, ["a b", "c", "a b", "d"], [["a b"], ["c"], ["zz"], [""]]),
    ("t_ngrams2", T, {"ngrams": 2}, TEXT, QUERY),
    ("t_ngrams_tuple", T, {"ngrams": (1, 3), "output_mode": "multi_hot"}, TEXT, QUERY),
    ("t_multi_hot", T, {"output_mode": "multi_hot"}, TEXT, QUERY),
    ("t_count", T, {"output_mode": "count", "max_tokens": 7}, TEXT, QUERY),
    ("t_count_pad", T, {"output_mode": "count", "max_tokens": 30, "pad_to_max_tokens": True}, TEXT, QUERY),
    ("t_tf_idf", T, {"output_mode": "tf_idf"}, TEXT, QUERY),
    ("t_tf_idf_ngrams", T, {"output_mode": "tf_idf", "ngrams": 2, "max_tokens": 10}, TEXT, QUERY),
    ("t_vocab", T, {"vocabulary": ["the", "cat", "dog"], "output_sequence_length": 6}, None, QUERY),
    (
        "t_vocab_tf_idf",
        T,
        {"vocabulary": ["the", "cat", "dog"], "output_mode": "tf_idf", "idf_weights": [0.1, 2.0, 3.0]},
        None,
        QUERY,
    ),
]
