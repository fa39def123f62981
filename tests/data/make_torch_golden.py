"""Makes tests/data/torch_golden.npz: small PyTorch RNN modules' state dicts, an input and the outputs.

Run once with a Python that has PyTorch (CPU is enough):

    /work/benchenv/bin/python tests/data/make_torch_golden.py

Each case `<name>` stores `<name>/sd/<key>` (the module's state dict), `<name>/x` (batch-major
input, float32), `<name>/y` (the module's `output`, batch-major), `<name>/h` (h_n), and
`<name>/facts` (JSON of the constructor's arguments).
"""

import json
import pathlib

import numpy as np
import torch

CASES = {
    "lstm": (torch.nn.LSTM, dict(input_size=3, hidden_size=4, batch_first=True)),
    "gru": (torch.nn.GRU, dict(input_size=3, hidden_size=4, batch_first=True)),
    "rnn_tanh": (torch.nn.RNN, dict(input_size=3, hidden_size=4, batch_first=True)),
    "rnn_relu": (torch.nn.RNN, dict(input_size=3, hidden_size=4, nonlinearity="relu", batch_first=True)),
    "lstm_2layers_bidir": (torch.nn.LSTM, dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)),
    "gru_2layers_bidir": (torch.nn.GRU, dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)),
    "rnn_2layers_bidir": (torch.nn.RNN, dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)),
    "lstm_2layers_nobias": (
        torch.nn.LSTM,
        dict(input_size=3, hidden_size=5, num_layers=2, bias=False, batch_first=True),
    ),
    "gru_bidir_batch_first": (torch.nn.GRU, dict(input_size=3, hidden_size=4, bidirectional=True, batch_first=True)),
}


def main():
    torch.manual_seed(0)
    arrays = {}
    for name, (cls, kwargs) in CASES.items():
        module = cls(**kwargs).eval()
        # Biases of both kinds non-zero and distinct, so that a wrong sum or gate order shows.
        with torch.no_grad():
            for value in module.parameters():
                value.uniform_(-0.6, 0.6)
        x = torch.randn(2, 5, kwargs["input_size"])
        with torch.no_grad():
            out = module(x if kwargs.get("batch_first") else x.transpose(0, 1))
        y, h = out[0], out[1][0] if cls is torch.nn.LSTM else out[1]
        if not kwargs.get("batch_first"):
            y = y.transpose(0, 1)
        for key, value in module.state_dict().items():
            arrays[f"{name}/sd/{key}"] = value.numpy()
        arrays[f"{name}/x"] = x.numpy()
        arrays[f"{name}/y"] = y.numpy()
        arrays[f"{name}/h"] = h.numpy()
        arrays[f"{name}/facts"] = np.array(json.dumps({"module": cls.__name__, **kwargs}))
    path = pathlib.Path(__file__).with_name("torch_golden.npz")
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(CASES)} cases, torch {torch.__version__})")


if __name__ == "__main__":
    main()
