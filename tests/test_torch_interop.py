"""PyTorch's nn.LSTM/GRU/RNN weights in rnnkit layers and back (rnnkit.interop.torch).

Golden values: tests/data/torch_golden.npz, made by tests/data/make_torch_golden.py (PyTorch
2.x on CPU): per module, its state dict, an input and PyTorch's `output` and `h_n`. PyTorch is
not needed here; when it is importable, the module path runs too.
"""

import json
import pathlib

import numpy as np
import pytest

import rnnkit as rk
from rnnkit.interop import torch as interop

GOLDEN = pathlib.Path(__file__).parent / "data" / "torch_golden.npz"
LAYERS = {"LSTM": rk.layers.LSTM, "GRU": rk.layers.GRU, "RNN": rk.layers.SimpleRNN}


def load_cases():
    data = np.load(GOLDEN)
    cases = {}
    for key in data.files:
        name, rest = key.split("/", 1)
        case = cases.setdefault(name, {"sd": {}})
        if rest.startswith("sd/"):
            case["sd"][rest[3:]] = data[key]
        elif rest == "facts":
            case["facts"] = json.loads(str(data[key]))
        else:
            case[rest] = data[key]
    return cases


CASES = load_cases()


def as_stack(layers):
    return layers if isinstance(layers, list) else [layers]


def run(layers, x):
    return np.asarray(rk.Sequential(as_stack(layers))(x))


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_outputs_match_pytorch(name):
    case = CASES[name]
    facts = case["facts"]
    cls = LAYERS[facts["module"]]
    kwargs = {"nonlinearity": facts["nonlinearity"]} if "nonlinearity" in facts else {}
    layers = cls.from_torch(case["sd"], **kwargs)
    stack = as_stack(layers)
    assert len(stack) == facts.get("num_layers", 1)
    assert all(isinstance(l, rk.layers.Bidirectional) == facts.get("bidirectional", False) for l in stack)
    np.testing.assert_allclose(run(layers, case["x"]), case["y"], atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_round_trip(name):
    case = CASES[name]
    facts = case["facts"]
    kwargs = {"nonlinearity": facts["nonlinearity"]} if "nonlinearity" in facts else {}
    layers = LAYERS[facts["module"]].from_torch(case["sd"], **kwargs)
    back = interop.to_torch_state_dict(layers)
    assert sorted(back) == sorted(case["sd"])
    for key, value in back.items():
        assert value.shape == case["sd"][key].shape, key
        if key.startswith("weight") or facts["module"] == "GRU":
            np.testing.assert_array_equal(value, case["sd"][key], err_msg=key)
    # LSTM and RNN keep one bias: the sum comes back as bias_ih with a zero bias_hh.
    if facts["module"] != "GRU" and facts.get("bias", True):
        for key in back:
            if key.startswith("bias_ih"):
                other = key.replace("bias_ih", "bias_hh")
                np.testing.assert_allclose(back[key], case["sd"][key] + case["sd"][other], atol=1e-7)
                assert not back[other].any()
    # The state dict read again gives the same outputs.
    again = LAYERS[facts["module"]].from_torch(back, **kwargs)
    np.testing.assert_allclose(run(again, case["x"]), case["y"], atol=1e-5)
    config = interop.torch_config(layers)
    assert config["module"] == facts["module"]
    assert config["num_layers"] == facts.get("num_layers", 1)
    assert config["bidirectional"] == facts.get("bidirectional", False)
    assert config["hidden_size"] == facts["hidden_size"] and config["input_size"] == facts["input_size"]
    assert config.get("nonlinearity", "tanh") == facts.get("nonlinearity", "tanh")


def test_single_layer_method_and_return_options():
    case = CASES["lstm"]
    layer = rk.layers.LSTM.from_torch(case["sd"], return_sequences=False, return_state=True, name="from_pt")
    assert isinstance(layer, rk.layers.LSTM) and layer.name == "from_pt"
    out, h, c = layer(case["x"])
    np.testing.assert_allclose(np.asarray(out), case["y"][:, -1], atol=1e-5)
    np.testing.assert_allclose(np.asarray(h), case["h"][0], atol=1e-5)
    assert set(layer.to_torch_state_dict()) == set(case["sd"])


def test_bidirectional_method_and_last_merge_mode():
    case = CASES["gru_bidir_batch_first"]
    layer = rk.layers.GRU.from_torch(case["sd"], merge_mode="sum")
    assert layer.merge_mode == "sum"
    y = np.asarray(layer(case["x"]))
    np.testing.assert_allclose(y, case["y"][..., :4] + case["y"][..., 4:], atol=1e-5)
    assert set(layer.to_torch_state_dict()) == set(case["sd"])


def test_prefixed_state_dict_and_facts_checked():
    sd = {f"encoder.rnn.{k}": v for k, v in CASES["gru"]["sd"].items()}
    sd["decoder.weight"] = np.zeros((2, 2), np.float32)
    layer = rk.layers.GRU.from_torch(sd, prefix="encoder.rnn.", num_layers=1, bidirectional=False, bias=True)
    np.testing.assert_allclose(np.asarray(layer(CASES["gru"]["x"])), CASES["gru"]["y"], atol=1e-5)
    with pytest.raises(ValueError, match=r"`num_layers` is 2, but the state dict says num_layers=1"):
        rk.layers.GRU.from_torch(CASES["gru"]["sd"], num_layers=2)
    with pytest.raises(ValueError, match=r"`bidirectional` is True"):
        rk.layers.GRU.from_torch(CASES["gru"]["sd"], bidirectional=True)


def test_errors_for_what_cannot_map():
    with pytest.raises(ValueError, match=r"'weight_hh_l0' expected shape \(16, 2\), received \(16, 4\)"):
        sd = dict(CASES["lstm"]["sd"], weight_hr_l0=np.zeros((2, 4), np.float32))
        rk.layers.LSTM.from_torch(sd)
    with pytest.raises(ValueError, match=r"`proj_size` is 3, but the state dict says proj_size=0"):
        rk.layers.LSTM.from_torch(CASES["lstm"]["sd"], proj_size=3)
    with pytest.raises(ValueError, match=r"'weight_ih_l0' expected 4·hidden_size = 16 rows for nn.LSTM"):
        rk.layers.LSTM.from_torch(CASES["gru"]["sd"])
    with pytest.raises(ValueError, match=r"'weight_ih_l0. expected 3·hidden_size = 9 rows"):
        rk.layers.GRU.from_torch(dict(CASES["gru"]["sd"], weight_hh_l0=np.zeros((12, 3), np.float32)))
    with pytest.raises(ValueError, match="keys that a PyTorch RNN does not have"):
        rk.layers.GRU.from_torch(dict(CASES["gru"]["sd"], extra=np.zeros(1)))
    with pytest.raises(ValueError, match="`nonlinearity` expected 'tanh' or 'relu', received 'gelu'"):
        rk.layers.SimpleRNN.from_torch(CASES["rnn_tanh"]["sd"], nonlinearity="gelu")
    with pytest.raises(ValueError, match="`nonlinearity` applies to nn.RNN only"):
        rk.layers.LSTM.from_torch(CASES["lstm"]["sd"], nonlinearity="relu")
    with pytest.raises(ValueError, match="`kind` is needed with a state dict"):
        interop.from_torch(CASES["lstm"]["sd"])
    with pytest.raises(TypeError, match="received list"):
        rk.layers.LSTM.from_torch([1, 2])


def test_errors_to_torch():
    gru = rk.layers.GRU(3, reset_after=False)
    gru.build((None, None, 2))
    with pytest.raises(ValueError, match="reset_after=False, which PyTorch's nn.GRU cannot compute"):
        gru.to_torch_state_dict()
    lstm = rk.layers.LSTM(3, activation="relu")
    lstm.build((None, None, 2))
    with pytest.raises(ValueError, match="activation='relu', recurrent_activation='sigmoid'; PyTorch's nn.LSTM"):
        lstm.to_torch_state_dict()
    back = rk.layers.SimpleRNN(3, go_backwards=True)
    back.build((None, None, 2))
    with pytest.raises(ValueError, match="go_backwards=True"):
        back.to_torch_state_dict()
    with pytest.raises(ValueError, match="not built yet"):
        rk.layers.LSTM(3).to_torch_state_dict()
    a, b = rk.layers.LSTM(3), rk.layers.GRU(3)
    a.build((None, None, 2))
    b.build((None, None, 3))
    with pytest.raises(ValueError, match="expected layers of one kind"):
        interop.to_torch_state_dict([a, b])


def test_rnnkit_layer_to_state_dict_matches_own_outputs():
    """A layer made in rnnkit (GRU reset_after=True, relu SimpleRNN) survives to_torch and back."""
    x = np.random.default_rng(1).normal(size=(3, 6, 2)).astype("float32")
    for layer in (rk.layers.GRU(4, return_sequences=True), rk.layers.SimpleRNN(4, activation="relu")):
        y = np.asarray(layer(x))
        kind = type(layer)
        kwargs = {"nonlinearity": "relu"} if kind is rk.layers.SimpleRNN else {}
        again = kind.from_torch(layer.to_torch_state_dict(), return_sequences=layer.return_sequences, **kwargs)
        np.testing.assert_allclose(np.asarray(again(x)), y, atol=1e-6)


class _Tensor:
    """Stands in for a torch tensor: `detach`, `cpu` and `numpy`, as the module path reads it."""

    def __init__(self, array):
        self.array = array

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.array


class _Module:
    """Stands in for nn.LSTM/GRU/RNN with the attributes PyTorch gives them (`mode`, sizes, flags)
    and a `state_dict()` of tensors, so the module path runs where torch is not installed."""

    def __init__(self, facts, state):
        kind = facts["module"]
        self.mode = "RNN_RELU" if facts.get("nonlinearity") == "relu" else {"RNN": "RNN_TANH"}.get(kind, kind)
        self.input_size, self.hidden_size = facts["input_size"], facts["hidden_size"]
        self.num_layers = facts.get("num_layers", 1)
        self.bidirectional = facts.get("bidirectional", False)
        self.bias = facts.get("bias", True)
        self.batch_first = facts.get("batch_first", False)
        self.proj_size = 0
        self._state = state

    def state_dict(self):
        return {key: _Tensor(value) for key, value in self._state.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_module_path_reads_a_module_by_its_attributes(name):
    """The module path (mode, flags and tensors read through their methods) gives PyTorch's
    outputs, with no torch installed: what it reads is exactly what a real module offers."""
    case = CASES[name]
    module = _Module(case["facts"], case["sd"])
    layers = LAYERS[case["facts"]["module"]].from_torch(module)
    np.testing.assert_allclose(run(layers, case["x"]), case["y"], atol=1e-5)
    wrong = "GRU" if case["facts"]["module"] != "GRU" else "LSTM"
    with pytest.raises(ValueError, match=r"^Argument `module` expected a PyTorch nn\.\w+ for this layer"):
        LAYERS[wrong].from_torch(module)


# --- with PyTorch itself, when it is installed ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_module_path(name):
    torch = pytest.importorskip("torch")
    case = CASES[name]
    facts = dict(case["facts"])
    cls = getattr(torch.nn, facts.pop("module"))
    module = cls(**facts).eval()
    module.load_state_dict({k: torch.from_numpy(v) for k, v in case["sd"].items()})
    layers = LAYERS[cls.__name__].from_torch(module)
    np.testing.assert_allclose(run(layers, case["x"]), case["y"], atol=1e-5)
    fresh = cls(**facts)
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in interop.to_torch_state_dict(layers).items()})
    x = torch.from_numpy(case["x"])
    with torch.no_grad():
        y = fresh(x if facts.get("batch_first") else x.transpose(0, 1))[0]
    y = y.numpy() if facts.get("batch_first") else y.transpose(0, 1).numpy()
    np.testing.assert_allclose(y, case["y"], atol=1e-5)
