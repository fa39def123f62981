"""CPU benchmark of rnnkit against its peers: PyTorch, Keras 3 on TensorFlow, Keras 3 on JAX.

Every framework runs in its own worker process (this file, started with `--worker NAME`): Keras's
backend is fixed per process, and a fresh process per framework gives each one's peak memory
without the others'. The parent drives the measurement round by round over a pipe: in each round
every framework, in a rotating order, times a block of steps while the others wait idle on their
pipe, so slow drifts of the machine (other jobs, thermal state) hit all frameworks alike.

The model of every workload is the Keras guide's MNIST model: RNN -> BatchNormalization ->
Dense(10), sparse categorical cross-entropy from logits, plain SGD (learning rate 0.01). A "train
step" is forward + backward + SGD update (`train_on_batch` for rnnkit and Keras; for PyTorch
`nn.LSTM`/`nn.GRU` + `BatchNorm1d` + `Linear`, `cross_entropy`, `backward`, `torch.optim.SGD`),
a "predict" step is `predict_on_batch` (PyTorch: `eval()` under `inference_mode`). Time per step is
the median over all timed steps of all rounds. Every framework keeps its default thread settings,
which use all cores.

Run with the benchmark environment, never in the test suite:

    python benches/peers.py            # W1-W6, the W1 variants, W7 once per framework
    python benches/peers.py --quick    # fewer repetitions, no W7
    python benches/peers.py --full     # W7 three times per framework, alternated
    python benches/peers.py --only W1,W3 --frameworks rnnkit,torch
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import warnings

# ---------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------

_MNIST = dict(cell="lstm", H=64, B=64, T=28, F=28)
# The keras-io addition example: "123+45 " (7 characters of 12) in, "168 " (4) out, one-hot.
_ADDITION = dict(model="addition", cell="lstm", H=128, T=7, F=12, T_OUT=4)
_W3 = dict(cell="lstm", H=512, B=64, T=100, F=512, mode="train")
_W5 = dict(cell="lstm", H=128, B=1, T=100, F=64, mode="predict")

WORKLOADS = {
    "W1": dict(_MNIST, mode="train", title="LSTM H=64, B=64, T=28, F=28, train step (guide's MNIST model)"),
    "W2": dict(_MNIST, mode="predict", title="LSTM H=64, B=64, T=28, F=28, predict_on_batch"),
    "W3": dict(_W3, title="LSTM H=512, B=64, T=100, F=512, train step"),
    "W3-bf16": dict(
        _W3,
        policy="mixed_bfloat16",
        title="W3 in bfloat16: rnnkit dtype='mixed_bfloat16' (AMX where the CPU has it), PyTorch "
        "torch.autocast('cpu', torch.bfloat16)",
    ),
    "W3-proj": dict(
        cell="lstm",
        H=512,
        B=64,
        T=100,
        F=512,
        projection=128,
        mode="train",
        title="W3 with a projection to 128 (beyond Keras): rnnkit LSTM(projection=128), PyTorch nn.LSTM(proj_size=128)",
    ),
    "W4": dict(cell="gru", H=256, B=64, T=100, F=128, mode="train", title="GRU H=256, B=64, T=100, F=128, train step"),
    "W5": dict(_W5, title="streaming inference LSTM H=128, B=1, T=100, F=64, predict_on_batch"),
    "W5-bf16": dict(
        _W5,
        policy="mixed_bfloat16",
        title="W5 in bfloat16: rnnkit dtype='mixed_bfloat16', PyTorch torch.autocast('cpu', torch.bfloat16)",
    ),
    "W5-int8": dict(
        _W5,
        quantize="int8",
        title="W5 quantized: rnnkit model.quantize('int8') (int8 LSTM and Dense kernels), vs float32 W5",
    ),
    "W6": dict(
        cell="lstm",
        bidir=True,
        H=128,
        B=32,
        T=200,
        F=64,
        mode="train",
        title="Bidirectional(LSTM H=128), B=32, T=200, F=64, train step",
    ),
    "W1-mask": dict(
        _MNIST, mode="train", mask="random", title="W1 + mask of a random pattern (each step kept with p=0.8)"
    ),
    "W1-mask-rpad": dict(_MNIST, mode="train", mask="rightpad", title="W1 + right-padded mask (random lengths T/2..T)"),
    "W1-dropout": dict(
        _MNIST, mode="train", dropout=0.2, recurrent_dropout=0.2, title="W1 + dropout=0.2, recurrent_dropout=0.2"
    ),
    "W1-backwards": dict(_MNIST, mode="train", go_backwards=True, title="W1 + go_backwards=True"),
    "W1-relu": dict(_MNIST, mode="train", activation="relu", title='W1 + activation="relu"'),
    "W1-nobias": dict(_MNIST, mode="train", use_bias=False, title="W1 + use_bias=False"),
    "W1-zoneout": dict(_MNIST, mode="train", zoneout=0.1, title="W1 + zoneout=0.1 (beyond Keras)"),
    "W1-layernorm": dict(
        _MNIST, mode="train", layer_norm=True, title="W1 + layer_norm=True (beyond Keras; haste's LayerNormLSTM)"
    ),
    "W7": dict(
        _MNIST,
        mode="epoch",
        N=60000,
        title="one epoch: fit on 60000x28x28 random inputs, W1's model, batch 64, verbose=0 (wall time)",
    ),
    "W8": dict(
        _ADDITION,
        mode="train",
        B=32,
        title="Keras addition seq2seq (LSTM 128 -> RepeatVector 4 -> LSTM 128 -> Dense 12 softmax), "
        "batch 32, Adam, train step",
    ),
    "W9": dict(_ADDITION, mode="predict", B=32, N=1000, title="the W8 model's predict on 1,000 samples (batch 32)"),
}
VARIANTS = [name for name in WORKLOADS if name.startswith("W1-")]
# W3 first: each worker is then a fresh process whose peak RSS is W3's (see `measure_memory`).
STREAMING = ["W5", "W5-bf16", "W5-int8"]
RUN_ORDER = ["W3", "W1", "W2", "W3-bf16", "W3-proj", "W4", *STREAMING, "W6", *VARIANTS, "W8", "W9", "W7"]
PRINT_ORDER = ["W1", "W2", "W3", "W3-bf16", "W3-proj", "W4", *STREAMING, "W6", *VARIANTS, "W7", "W8", "W9"]

FRAMEWORKS = ["rnnkit", "torch", "keras-tensorflow", "keras-jax"]
OPTIONAL_FRAMEWORKS = ["torch-nomkldnn"]  # PyTorch with oneDNN switched off (PERFORMANCE_REFERENCE 7.4)
LABELS = {
    "rnnkit": "rnnkit",
    "torch": "PyTorch",
    "torch-nomkldnn": "PyTorch (oneDNN off)",
    "keras-tensorflow": "Keras/TF",
    "keras-jax": "Keras/JAX",
}

# Targets of the performance issue: (reference, factor) means rnnkit <= factor x reference.
TARGETS = {
    "W1": ("torch", 0.7),
    "W2": ("torch", 0.7),
    "W3": ("torch", 0.8),
    "W4": ("best", 0.7),
    "W5": ("torch", 0.7),
    "W6": ("best", 0.75),
    "W7": ("torch", 0.7),
    "W8": ("keras-tensorflow", 0.5),
    "W9": ("keras-tensorflow", 0.5),
    # The bf16 mode against PyTorch's float32 W3 (the row above), where AMX exists.
    "W3-bf16": ("torch@W3", 0.4),
    # Informational: the bf16 mode's streaming inference against PyTorch's float32 W5.
    "W5-bf16": ("torch@W5", 0.7),
    # Informational: the int8 model's streaming inference against PyTorch's float32 W5, and
    # (second reference) against rnnkit's own float32 W5.
    "W5-int8": ("torch@W5", 0.7),
    # Issue 20: zoneout costs at most 10% over plain W1; a projection LSTM is at least as fast as
    # PyTorch's proj_size.
    "W1-zoneout": ("rnnkit@W1", 1.1),
    # Issue 20: layer_norm=True costs at most 30% over plain W1.
    "W1-layernorm": ("rnnkit@W1", 1.3),
    "W3-proj": ("torch", 1.0),
}
# Second references: rnnkit <= factor x this framework too.
EXTRA_TARGETS = {"W8": ("torch", 0.7), "W5-int8": ("rnnkit@W5", 1.0)}
W3_SGEMM_FRACTION = 0.85

# Why PyTorch does not run a W1 variant (None: it runs one).
TORCH_VARIANT_SKIP = {
    "W1-mask": "skipped: nn.LSTM has no per-step mask; a random pattern is not right-padded, so packed "
    "sequences cannot express it",
    "W1-dropout": "skipped: nn.LSTM has no input/recurrent dropout inside the recurrence",
    "W1-relu": "skipped: nn.LSTM has no activation option (no fused equivalent)",
}
TORCH_VARIANT_NOTE = {
    "W1-mask-rpad": "emulated with pack_padded_sequence (enforce_sorted=False; packing counted in the step; "
    "the packed path is native ATen, not oneDNN, and skips the padded steps)",
    "W1-backwards": "emulated by torch.flip of the input along time (counted in the step)",
    "W1-nobias": "nn.LSTM(bias=False)",
    "W1-zoneout": "a Python loop over nn.LSTMCell with Bernoulli zoneout masks per step (what PyTorch users "
    "write: nn.LSTM has no zoneout)",
    "W1-layernorm": "a Python loop of nn.Linear + nn.LayerNorm (input product normalised over all steps at "
    "once, the recurrent product and the cell state per step; what PyTorch users write: nn.LSTM has no "
    "layer normalisation, pytorch#6760)",
}


def gates(cell):
    return {"lstm": 4, "gru": 3}[cell]


def step_flops(wl):
    """Matrix-product FLOPs of one step: 2·G·H·(F+H)·B·T per direction forward, 3x that to train.
    The addition model adds its decoder (inputs of H features, T_OUT steps) and Dense."""
    directions = 2 if wl.get("bidir") else 1
    out = wl.get("projection") or wl["H"]
    forward = 2 * gates(wl["cell"]) * wl["H"] * (wl["F"] + out) * wl["B"] * wl["T"] * directions
    forward += 2 * wl["H"] * (out if wl.get("projection") else 0) * wl["B"] * wl["T"] * directions
    if wl.get("model") == "addition":
        forward += 2 * (gates(wl["cell"]) * wl["H"] * 2 * wl["H"] + wl["H"] * wl["F"]) * wl["B"] * wl["T_OUT"]
        forward *= wl.get("N", wl["B"]) // wl["B"]
    return 3 * forward if wl["mode"] == "train" else forward


def input_gradient_flops(wl):
    """The part of `step_flops` that is the input's gradient (2·G·H·F·B·T per direction): no
    framework needs it when the RNN is the model's first layer, and rnnkit skips it."""
    if wl["mode"] != "train":
        return 0
    directions = 2 if wl.get("bidir") else 1
    return 2 * gates(wl["cell"]) * wl["H"] * wl["F"] * wl["B"] * wl["T"] * directions


def make_data(wl, seed=1234):
    """The same inputs, labels and mask for every framework."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if wl.get("model") == "addition":
        return addition_data(rng, wl.get("N", wl["B"]), wl["T"], wl["T_OUT"])
    n = wl.get("N", wl["B"])
    x = rng.standard_normal((n, wl["T"], wl["F"]), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int64)
    mask = None
    if wl.get("mask") == "random":
        mask = rng.random((n, wl["T"])) < 0.8
        mask[:, 0] = True  # no row entirely masked
    elif wl.get("mask") == "rightpad":
        lengths = rng.integers(wl["T"] // 2, wl["T"] + 1, n)
        mask = np.arange(wl["T"])[None, :] < lengths[:, None]
    return x, y, mask


def addition_data(rng, n, t_in, t_out):
    """`n` one-hot questions "a+b" (a, b < 1000, right-padded with spaces) and their answers."""
    import numpy as np

    chars = "0123456789+ "
    a, b = rng.integers(0, 1000, n), rng.integers(0, 1000, n)
    x = np.zeros((n, t_in, len(chars)), np.float32)
    y = np.zeros((n, t_out, len(chars)), np.float32)
    for i in range(n):
        for rows, text, width in ((x, f"{a[i]}+{b[i]}", t_in), (y, str(a[i] + b[i]), t_out)):
            for j, ch in enumerate(text.ljust(width)):
                rows[i, j, chars.index(ch)] = 1.0
    return x, y, None


# ---------------------------------------------------------------------------------------------
# Worker side: one framework per process
# ---------------------------------------------------------------------------------------------


def _rss_kib(field="VmRSS"):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


class KerasStyle:
    """rnnkit and Keras 3: the same Keras code, `K` being `rnnkit` or `keras`."""

    def __init__(self, name):
        self.name = name
        if name == "rnnkit":
            import rnnkit as K
        else:
            import keras as K
        self.K = K
        self.model = None

    def info(self):
        import numpy as np

        K = self.K
        info = {"version": f"{self.name.split('-')[0]} {K.__version__}", "numpy": np.__version__}
        cpus = len(os.sched_getaffinity(0))
        if self.name == "rnnkit":
            env = os.environ.get("RAYON_NUM_THREADS")
            info["threads"] = (
                f"rayon global pool: RAYON_NUM_THREADS={env}"
                if env
                else f"rayon global pool, default size = {cpus} (one per CPU; RAYON_NUM_THREADS unset)"
            )
        elif self.name == "keras-tensorflow":
            import tensorflow as tf

            intra = tf.config.threading.get_intra_op_parallelism_threads()
            inter = tf.config.threading.get_inter_op_parallelism_threads()
            info["version"] += f", tensorflow {tf.__version__}"
            try:
                from tensorflow.python.util import _pywrap_util_port

                onednn = "oneDNN " + ("on" if _pywrap_util_port.IsMklEnabled() else "off")
            except Exception:  # noqa: BLE001 - private API; report what is known
                onednn = f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset (default on)')}"
            info["threads"] = (
                f"intra-op {intra}, inter-op {inter} (0 = TensorFlow's default: all {cpus} cores); "
                f"{onednn}; devices {[d.device_type for d in tf.config.list_physical_devices()]}"
            )
        else:
            import jax
            import jaxlib

            info["version"] += f", jax {jax.__version__}, jaxlib {jaxlib.__version__}"
            info["threads"] = (
                f"XLA:CPU default thread pool (all {cpus} cores; XLA_FLAGS="
                f"{os.environ.get('XLA_FLAGS', 'unset')}); devices {[str(d) for d in jax.devices()]}"
            )
        return info

    def setup(self, wl):
        if wl.get("model") == "addition":
            return self.setup_addition(wl)
        K = self.K
        L = K.layers
        keys = (
            "dropout",
            "recurrent_dropout",
            "go_backwards",
            "activation",
            "use_bias",
            "zoneout",
            "projection",
            "layer_norm",
        )
        options = {k: wl[k] for k in keys if k in wl}
        if "policy" in wl:
            options["dtype"] = wl["policy"]
        rnn = (L.LSTM if wl["cell"] == "lstm" else L.GRU)(wl["H"], **options)
        if wl.get("bidir"):
            rnn = L.Bidirectional(rnn)
        x_in = K.Input(shape=(wl["T"], wl["F"]))
        if wl.get("mask"):
            mask_in = K.Input(shape=(wl["T"],), dtype="bool")
            inputs, hidden = [x_in, mask_in], rnn(x_in, mask=mask_in)
        else:
            inputs, hidden = x_in, rnn(x_in)
        outputs = L.Dense(10)(L.BatchNormalization()(hidden))
        model = K.Model(inputs, outputs)
        model.compile(
            optimizer=K.optimizers.SGD(learning_rate=0.01),
            loss=K.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        if "quantize" in wl:
            with warnings.catch_warnings():  # BatchNormalization stays float32, with a warning
                warnings.simplefilter("ignore")
                model.quantize(wl["quantize"])
        self.model = model
        x, y, mask = make_data(wl)
        self.x = [x, mask] if mask is not None else x
        self.y = y
        note = self.jit_note()
        if wl["mode"] == "train":
            self.step = lambda: model.train_on_batch(self.x, self.y)
        elif wl["mode"] == "predict":
            self.step = lambda: model.predict_on_batch(self.x)
        else:
            # Compile / trace the train function for the full batch and for the last partial batch
            # (60000 = 937·64 + 32) before the timed epoch, as the second epoch of a real fit would be.
            model.fit(x[:160], y[:160], batch_size=64, epochs=1, verbose=0)
            self.step = None
            note = "; ".join(
                filter(
                    None,
                    [
                        note,
                        "fit(shuffle=True) timed after a warm-up fit on 160 samples (full + last partial batch shapes)",
                    ],
                )
            )
        return note

    def setup_addition(self, wl):
        K = self.K
        L = K.layers
        model = K.Sequential(
            [
                K.Input(shape=(wl["T"], wl["F"])),
                L.LSTM(wl["H"]),
                L.RepeatVector(wl["T_OUT"]),
                L.LSTM(wl["H"], return_sequences=True),
                L.Dense(wl["F"], activation="softmax"),
            ]
        )
        model.compile(loss="categorical_crossentropy", optimizer="adam")
        self.model = model
        self.x, self.y, _ = make_data(wl)
        if wl["mode"] == "train":
            self.step = lambda: model.train_on_batch(self.x, self.y)
        else:
            self.step = lambda: model.predict(self.x, batch_size=wl["B"], verbose=0)
        return self.jit_note()

    def jit_note(self):
        """What `compile`'s default `jit_compile="auto"` chose for the model."""
        chosen = getattr(self.model, "jit_compile", "?")
        if self.name == "rnnkit":
            return (
                f"jit_compile={chosen} (compile's default 'auto'; True = the compiled plan of rnnkit.models.compiled)"
            )
        return f"jit_compile={chosen} (Keras's default 'auto')"

    def epoch(self):
        start = time.perf_counter()
        self.model.fit(self.x, self.y, batch_size=64, epochs=1, verbose=0)
        return time.perf_counter() - start

    def teardown(self):
        self.model = self.step = self.x = self.y = None
        if self.name != "rnnkit":
            self.K.backend.clear_session()


class Torch:
    """PyTorch CPU: nn.LSTM / nn.GRU -> BatchNorm1d -> Linear, cross_entropy, SGD."""

    def __init__(self, name):
        import torch

        self.torch = torch
        self.name = name
        if name == "torch-nomkldnn":
            torch.backends.mkldnn.enabled = False

    def info(self):
        torch = self.torch
        cpus = len(os.sched_getaffinity(0))
        threads = torch.get_num_threads()
        note = "the default" if threads == cpus else f"not all {cpus} cores"
        return {
            "version": f"torch {torch.__version__}",
            "threads": (
                f"torch.get_num_threads()={threads} ({note}), interop {torch.get_num_interop_threads()}; "
                f"oneDNN (mkldnn) available={torch.backends.mkldnn.is_available()}, "
                f"enabled={torch.backends.mkldnn.enabled}"
            ),
        }

    def setup(self, wl):
        if wl.get("model") == "addition":
            return self.setup_addition(wl)
        torch = self.torch
        nn = torch.nn
        F_ = torch.nn.functional
        for key in ("dropout", "recurrent_dropout", "activation"):
            if key in wl:
                raise SkipWorkload(
                    {
                        "dropout": TORCH_VARIANT_SKIP["W1-dropout"],
                        "recurrent_dropout": TORCH_VARIANT_SKIP["W1-dropout"],
                        "activation": TORCH_VARIANT_SKIP["W1-relu"],
                    }[key]
                )
        if wl.get("mask") == "random":
            raise SkipWorkload(TORCH_VARIANT_SKIP["W1-mask"])
        bidir = bool(wl.get("bidir"))
        proj = wl.get("projection") or 0
        width = (proj or wl["H"]) * (2 if bidir else 1)
        cls = nn.LSTM if wl["cell"] == "lstm" else nn.GRU
        flip = bool(wl.get("go_backwards"))
        zoneout = wl.get("zoneout", 0.0)
        layer_norm = wl.get("layer_norm", False)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                bias = wl.get("use_bias", True)
                extra = {"proj_size": proj} if proj else {}
                self.rnn = cls(wl["F"], wl["H"], batch_first=True, bidirectional=bidir, bias=bias, **extra)
                if zoneout:
                    self.rnn = nn.LSTMCell(wl["F"], wl["H"], bias=bias)
                if layer_norm:
                    H = wl["H"]
                    self.rnn = None
                    self.ih, self.hh = nn.Linear(wl["F"], 4 * H, bias=bias), nn.Linear(H, 4 * H, bias=False)
                    self.ln_ih, self.ln_hh, self.ln_c = nn.LayerNorm(4 * H), nn.LayerNorm(4 * H), nn.LayerNorm(H)
                # Keras's BatchNormalization defaults: epsilon 1e-3, moving-average momentum 0.99.
                self.bn = nn.BatchNorm1d(width, eps=1e-3, momentum=0.01)
                self.fc = nn.Linear(width, 10)

            def zoneout_lstm(self, x):
                """nn.LSTMCell stepped in Python, each state keeping its previous value where a
                fresh Bernoulli(zoneout) mask says so (in training)."""
                h = c = x.new_zeros(x.shape[0], wl["H"])
                for t in range(x.shape[1]):
                    h_new, c_new = self.rnn(x[:, t], (h, c))
                    keep_h = torch.bernoulli(torch.full_like(h, zoneout))
                    keep_c = torch.bernoulli(torch.full_like(c, zoneout))
                    h, c = keep_h * h + (1 - keep_h) * h_new, keep_c * c + (1 - keep_c) * c_new
                return h

            def layer_norm_lstm(self, x):
                """A layer-normalised LSTM as a Python loop: the input product normalised for all
                steps at once, the recurrent product and the cell state at each step."""
                h = c = x.new_zeros(x.shape[0], wl["H"])
                inputs = self.ln_ih(self.ih(x))
                for t in range(x.shape[1]):
                    i, f, g, o = (inputs[:, t] + self.ln_hh(self.hh(h))).chunk(4, 1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(self.ln_c(c))
                return h

            def forward(self, x, lengths=None):
                if layer_norm:
                    return self.fc(self.bn(self.layer_norm_lstm(x)))
                if zoneout:
                    return self.fc(self.bn(self.zoneout_lstm(x)))
                if flip:
                    x = torch.flip(x, [1])
                if lengths is not None:
                    x = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                _, state = self.rnn(x)
                h_n = state[0] if isinstance(state, tuple) else state
                h = torch.cat([h_n[-2], h_n[-1]], dim=1) if bidir else h_n[-1]
                return self.fc(self.bn(h))

        net = Net()
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        x, y, mask = make_data(wl)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        lengths = torch.from_numpy(mask.sum(axis=1).astype("int64")) if mask is not None else None
        self.net, self.xt, self.yt = net, xt, yt

        bf16 = wl.get("policy") == "mixed_bfloat16"

        def train(xb=xt, yb=yt, lb=lengths):
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = F_.cross_entropy(net(xb, lb), yb)
            loss.backward()
            opt.step()
            return loss.item()

        def predict():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return net(xt, lengths).float().numpy()

        self.train = train
        if wl["mode"] == "epoch":  # warm up on a full and a partial (last) batch, as Keras's warm-up fit
            for size in (64, 64, 32):
                train(xt[:size], yt[:size], None)
        self.step = self._step(net, wl, train, predict)
        # Which kernel nn.LSTM/GRU dispatched to: one profiled step (part of the warm-up).
        path = None
        if wl["mode"] != "epoch":
            with torch.autograd.profiler.profile() as prof:
                self.step()
            names = {event.name for event in prof.function_events}
            path = (
                "oneDNN RNN (mkldnn_rnn_layer)"
                if any("mkldnn_rnn" in n for n in names)
                else "native ATen RNN (no oneDNN)"
            )
        if wl["mode"] == "epoch":
            path = (
                "a plain loop as fit: torch.randperm shuffle, 938 batches indexed from one tensor (no DataLoader), "
                "the train step above; warmed up on 3 batches first"
            )
        notes = [n for n in (path, TORCH_VARIANT_NOTE.get(wl.get("_name", ""))) if n]
        return "; ".join(notes) or None

    @staticmethod
    def _step(net, wl, train, predict):
        """The timed step of the workload's mode, with the network in that mode."""
        if wl["mode"] == "predict":
            net.eval()
            return predict
        net.train()
        return train

    def setup_addition(self, wl):
        torch = self.torch
        nn = torch.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.encoder = nn.LSTM(wl["F"], wl["H"], batch_first=True)
                self.decoder = nn.LSTM(wl["H"], wl["H"], batch_first=True)
                self.fc = nn.Linear(wl["H"], wl["F"])

            def forward(self, x):  # logits; the softmax is in the loss (train) or applied (predict)
                _, (h, _) = self.encoder(x)
                repeated = h[-1].unsqueeze(1).expand(-1, wl["T_OUT"], -1)
                out, _ = self.decoder(repeated)
                return self.fc(out)

        net = Net()
        # Keras's Adam defaults: learning rate 1e-3, epsilon 1e-7.
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        x, y, _ = make_data(wl)
        xt, labels = torch.from_numpy(x), torch.from_numpy(y.argmax(-1))
        self.net, self.xt, self.yt = net, xt, labels

        def train():
            opt.zero_grad(set_to_none=True)
            logits = net(xt)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, wl["F"]), labels.reshape(-1))
            loss.backward()
            opt.step()
            return loss.item()

        def predict():  # batches of 32, as Keras's predict
            with torch.inference_mode():
                return torch.cat(
                    [torch.softmax(net(xt[i : i + wl["B"]]), -1) for i in range(0, xt.shape[0], wl["B"])]
                ).numpy()

        self.step = self._step(net, wl, train, predict)
        return "nn.LSTM encoder/decoder, cross_entropy on logits (= softmax + categorical cross-entropy), Adam"

    def epoch(self):
        torch = self.torch
        n = self.xt.shape[0]
        start = time.perf_counter()
        perm = torch.randperm(n)  # shuffled every epoch, as fit(shuffle=True)
        for i in range(0, n, 64):
            idx = perm[i : i + 64]
            self.train(self.xt[idx], self.yt[idx], None)
        return time.perf_counter() - start

    def teardown(self):
        self.net = self.step = self.train = self.xt = self.yt = None


class SkipWorkload(Exception):
    """This framework has no equivalent of the workload; the message says why."""


def worker_main(name):
    # The protocol gets its own copy of stdout; anything a library prints goes to stderr (a log).
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def reply(obj):
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    fw = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        try:
            if cmd == "quit":
                reply({"ok": True})
                return
            if cmd == "info":
                t0 = time.perf_counter()
                fw = Torch(name) if name.startswith("torch") else KerasStyle(name)
                info = fw.info()
                info["import_s"] = time.perf_counter() - t0
                info["rss_kib"] = _rss_kib()
                reply(info)
            elif cmd == "setup":
                wl = dict(WORKLOADS[msg["wl"]], _name=msg["wl"])
                gc.collect()
                rss_before = _rss_kib()
                t0 = time.perf_counter()
                try:
                    note = fw.setup(wl)
                except SkipWorkload as skip:
                    reply({"skip": str(skip)})
                    continue
                reply({"ok": True, "note": note, "rss_before_kib": rss_before, "setup_s": time.perf_counter() - t0})
            elif cmd == "warmup":
                # At least `min_steps` steps and `seconds` of stepping; the first includes tracing/compiling.
                times, start = [], time.perf_counter()
                while len(times) < msg["min_steps"] or (
                    time.perf_counter() - start < msg["seconds"] and len(times) < msg["max_steps"]
                ):
                    t0 = time.perf_counter()
                    fw.step()
                    times.append(time.perf_counter() - t0)
                reply({"times": times})
            elif cmd == "run":
                # `n` steps, cut short (after at least one) when the block runs past `max_s`.
                times, start = [], time.perf_counter()
                while len(times) < msg["n"] and (not times or time.perf_counter() - start < msg["max_s"]):
                    t0 = time.perf_counter()
                    fw.step()
                    times.append(time.perf_counter() - t0)
                reply({"times": times})
            elif cmd == "epoch":
                reply({"seconds": fw.epoch()})
            elif cmd == "peak":
                reply({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "rss_kib": _rss_kib()})
            elif cmd == "teardown":
                fw.teardown()
                gc.collect()
                reply({"ok": True})
            else:
                reply({"error": f"unknown command {cmd!r}"})
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which goes on
            traceback.print_exc()
            reply({"error": f"{type(exc).__name__}: {exc}"[:400]})


# ---------------------------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------------------------


class WorkerDied(Exception):
    pass


class Worker:
    """A framework's process and its request/response pipe."""

    def __init__(self, name):
        self.name = name
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"peers-{name}-", suffix=".log", delete=False)
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        if name.startswith("keras-"):
            env["KERAS_BACKEND"] = name.split("-", 1)[1]
        if name == "keras-jax":
            env["JAX_PLATFORMS"] = "cpu"
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
            env=env,
        )
        self.dead = None

    def send(self, cmd, **kwargs):
        self.proc.stdin.write(json.dumps(dict(cmd=cmd, **kwargs)) + "\n")
        self.proc.stdin.flush()

    def recv(self, timeout=900):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            raise WorkerDied(f"no answer within {timeout} s (killed)")
        line = self.proc.stdout.readline()
        if not line:
            raise WorkerDied(f"exited with status {self.proc.wait()}")
        return json.loads(line)

    def ask(self, cmd, timeout=900, **kwargs):
        if self.dead:
            raise WorkerDied(self.dead)
        try:
            self.send(cmd, **kwargs)
            return self.recv(timeout)
        except (WorkerDied, BrokenPipeError, OSError) as exc:
            self.dead = str(exc)
            raise WorkerDied(f"{self.name} worker: {exc}; log tail:\n{self.log_tail()}") from None

    def log_tail(self, lines=12):
        try:
            with open(self.log.name) as f:
                return "".join("      | " + line for line in f.readlines()[-lines:])
        except OSError:
            return ""

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        if self.proc.poll() is None and not self.dead:
            try:
                self.ask("quit", timeout=30)
            except WorkerDied:
                pass
        self.kill()
        self.log.close()
        os.unlink(self.log.name)


def out(text=""):
    print(text, flush=True)


def cpu_model():
    """The first processor's model name, family/model and widest vector extension, from /proc/cpuinfo."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.processor() or "unknown"
    flags = set(fields.get("flags", "").split())
    isa = [
        f
        for f in (
            "avx2",
            "fma",
            "avx512f",
            "avx512vl",
            "avx512bw",
            "avx512dq",
            "avx512_bf16",
            "avx512_fp16",
            "amx_tile",
            "amx_bf16",
            "amx_int8",
        )
        if f in flags
    ]
    return (
        f"{fields.get('model name', 'unknown')} (family {fields.get('cpu family', '?')}, model "
        f"{fields.get('model', '?')}; {' '.join(isa) or 'no AVX2'})"
    )


def loadavg():
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def sgemm_gflops(repeats=7):
    """numpy float32 2048x2048 product: median GFLOP/s of `repeats` products after two warm-ups."""
    import numpy as np

    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    for _ in range(2):
        np.matmul(a, b, out=c)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def numpy_blas():
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy
        return "unknown"


def available_frameworks():
    """Which frameworks are installed, and why the others are skipped."""
    have = {m: importlib.util.find_spec(m) is not None for m in ("rnnkit", "torch", "keras", "tensorflow", "jax")}
    ok, missing = {}, {}
    need = {
        "rnnkit": ["rnnkit"],
        "torch": ["torch"],
        "torch-nomkldnn": ["torch"],
        "keras-tensorflow": ["keras", "tensorflow"],
        "keras-jax": ["keras", "jax"],
    }
    for name, mods in need.items():
        lacking = [m for m in mods if not have[m]]
        (missing if lacking else ok)[name] = f"not installed ({', '.join(lacking)})" if lacking else True
    return ok, missing


def applies(fw, wl_name):
    if wl_name.startswith("W1-") and fw.startswith("keras-"):
        return "not run: the W1 variants are rnnkit vs PyTorch only"
    if wl_name.endswith("-bf16") and fw != "rnnkit" and fw != "torch":
        return "not run: the bf16 row is rnnkit vs PyTorch's autocast (Keras's mixed policy is judged by accuracy)"
    if wl_name.endswith("-int8") and fw != "rnnkit":
        return "not run: the int8 row is rnnkit's quantized model against the float32 W5 row (Keras quantizes no LSTM)"
    if wl_name == "W3-proj" and fw.startswith("keras-"):
        return "not run: Keras's LSTM has no projection"
    return None


def quartiles(values):
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def fmt_ms(seconds):
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 100 else f"{ms:.1f}"


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.rounds = 3 if args.quick else 7
        self.block_s = 0.12 if args.quick else 0.3
        self.warm_s = 0.4 if args.quick else 1.0
        # Measurement time per workload (after warm-up): past it, rounds stop (after at least two),
        # which bounds the run when a framework is very slow on a busy machine.
        self.budget_s = 15 if args.quick else 45
        self.cut = {}  # workload -> rounds actually run, where the budget cut them
        self.results = {}  # workload -> {fw: {"median": s, ...}} or {"skip": reason}
        self.notes = {}  # workload -> {fw: note}
        self.memory = {}  # fw -> (maxrss_kib, rss_before_kib)
        self.workers = {}
        self.sgemm = None

    # -- measurement ---------------------------------------------------------------------------
    def ask(self, wl_name, fw, command, **kwargs):
        """The worker's reply to `command`, or None after recording in the results why there is
        none (the worker died, failed, or skips the workload)."""
        try:
            r = self.workers[fw].ask(command, **kwargs)
        except WorkerDied as exc:
            self.results[wl_name][fw] = {"error": str(exc)}
            return None
        if "skip" in r or "error" in r:
            self.results[wl_name][fw] = {"skip": r["skip"]} if "skip" in r else {"error": r["error"]}
            return None
        return r

    def run_steps(self, wl_name, fws):
        """Set up, warm up, then alternate rounds of timed blocks; returns {fw: times}."""
        live = {}
        for fw in fws:
            r = self.ask(wl_name, fw, "setup", wl=wl_name)
            if r is None:
                continue
            if r.get("note"):
                self.notes[wl_name][fw] = r["note"]
            live[fw] = r
        blocks, times = {}, {fw: [] for fw in live}
        for fw in list(live):
            r = self.ask(wl_name, fw, "warmup", seconds=self.warm_s, min_steps=2, max_steps=400)
            if r is None:
                del live[fw]
                continue
            typical = min(r["times"][1:])  # the least disturbed step: a busy machine inflates the others
            blocks[fw] = max(1, min(500, round(self.block_s / max(typical, 1e-6))))
        order = list(live)
        measure_start = time.perf_counter()
        for rnd in range(self.rounds):
            if rnd >= 2 and time.perf_counter() - measure_start > self.budget_s:
                self.cut[wl_name] = rnd
                break
            shift = rnd % max(1, len(order))
            for fw in order[shift:] + order[:shift]:
                if fw not in live:
                    continue
                r = self.ask(wl_name, fw, "run", n=blocks[fw], max_s=3 * self.block_s)
                if r is None:
                    del live[fw]
                    continue
                times[fw].extend(r["times"])
        return {fw: times[fw] for fw in live}, live

    def run_workload(self, wl_name, fws):
        wl = WORKLOADS[wl_name]
        if wl_name == "W3":  # the FLOP limit W3 is judged against, measured again just before it
            again = sgemm_gflops()
            self.sgemm_runs.append(again)
            self.sgemm = max(self.sgemm_runs)
        self.results[wl_name], self.notes[wl_name] = {}, {}
        todo = []
        for fw in fws:
            reason = applies(fw, wl_name)
            if reason:
                self.results[wl_name][fw] = {"skip": reason}
            else:
                todo.append(fw)
        started = time.perf_counter()
        load = loadavg()
        if wl["mode"] == "epoch":
            self.run_epochs(wl_name, todo)
        else:
            times, live = self.run_steps(wl_name, todo)
            for fw, ts in times.items():
                q1, q3 = quartiles(ts)
                self.results[wl_name][fw] = {
                    "median": statistics.median(ts),
                    "q1": q1,
                    "q3": q3,
                    "n": len(ts),
                    "min": min(ts),
                }
            if wl_name == "W3":
                for fw in live:
                    try:
                        r = self.workers[fw].ask("peak")
                        self.memory[fw] = (r["maxrss_kib"], live[fw]["rss_before_kib"])
                    except WorkerDied:
                        pass
        for fw in todo:
            w = self.workers[fw]
            if not w.dead:
                try:
                    w.ask("teardown")
                except WorkerDied as exc:
                    self.results[wl_name].setdefault(fw, {"error": str(exc)})
        self.print_workload(wl_name, time.perf_counter() - started, load)

    def run_epochs(self, wl_name, fws):
        live = []
        for fw in fws:
            r = self.ask(wl_name, fw, "setup", wl=wl_name)
            if r is not None:
                live.append(fw)
                if r.get("note"):
                    self.notes[wl_name][fw] = r["note"]
        repeats = 3 if self.args.full else 1
        times = {fw: [] for fw in live}
        for rnd in range(repeats):
            shift = rnd % max(1, len(live))
            for fw in live[shift:] + live[:shift]:
                if fw in self.results[wl_name]:
                    continue
                r = self.ask(wl_name, fw, "epoch", timeout=1800)
                if r is not None:
                    times[fw].append(r["seconds"])
        for fw, ts in times.items():
            if ts and fw not in self.results[wl_name]:
                self.results[wl_name][fw] = {
                    "median": statistics.median(ts),
                    "q1": min(ts),
                    "q3": max(ts),
                    "n": len(ts),
                    "min": min(ts),
                }

    # -- reporting -----------------------------------------------------------------------------
    def best_peer(self, wl_name):
        peers = [
            (r["median"], fw) for fw, r in self.results.get(wl_name, {}).items() if fw != "rnnkit" and "median" in r
        ]
        return min(peers) if peers else None

    def other_result(self, ref):
        """The result `ref` ("framework@workload") names: another workload's."""
        ref_name, ref_wl = ref.split("@")
        return self.results.get(ref_wl, {}).get(ref_name, {})

    @staticmethod
    def other_label(ref):
        ref_name, ref_wl = ref.split("@")
        return f"{LABELS[ref_name]}'s {ref_wl}"

    def verdicts(self, wl_name):
        """Lines saying whether the issue's targets are met for this workload."""
        res = self.results.get(wl_name, {})
        rk = res.get("rnnkit", {}).get("median")
        lines = []
        if wl_name not in TARGETS:
            return [f"target {wl_name}: none in the issue (informational)"]
        ref, factor = TARGETS[wl_name]
        if ref == "best":
            best = self.best_peer(wl_name)
            what = f"rnnkit <= {factor} x best peer"
            ref_time, ref_name = (best[0], best[1]) if best else (None, None)
            ref_label = LABELS.get(ref_name)
        elif "@" in ref:  # another workload's result: "framework@workload"
            ref_label = self.other_label(ref)
            what = f"rnnkit <= {factor} x {ref_label}"
            # Under its own key: the reference may be rnnkit's own result on the other workload.
            ref_name = ref
            res = {**res, ref_name: self.other_result(ref)}
            ref_time = res[ref_name].get("median")
        else:
            what = f"rnnkit <= {factor} x {LABELS[ref]}"
            ref_time, ref_name, ref_label = res.get(ref, {}).get("median"), ref, LABELS[ref]
        if rk is None or ref_time is None:
            lines.append(f"target {wl_name}: {what}: cannot judge (rnnkit or the reference not measured)")
        else:
            ratio = rk / ref_time
            met = "MET" if ratio <= factor else "NOT MET"
            lines.append(
                f"target {wl_name}: {what}: rnnkit {fmt_ms(rk)} ms / {ref_label} {fmt_ms(ref_time)} ms "
                f"= {ratio:.2f} (target <= {factor}) -> {met}"
            )
            min_ratio = res["rnnkit"]["min"] / res[ref_name]["min"]
            lines.append(
                f"          (fastest steps only: {fmt_ms(res['rnnkit']['min'])} / {fmt_ms(res[ref_name]['min'])} ms "
                f"= {min_ratio:.2f} -> {'MET' if min_ratio <= factor else 'NOT MET'})"
            )
        if wl_name in EXTRA_TARGETS:
            ref_name, factor = EXTRA_TARGETS[wl_name]
            other = self.other_result(ref_name) if "@" in ref_name else res.get(ref_name, {})
            ref_time = other.get("median")
            label = self.other_label(ref_name) if "@" in ref_name else LABELS[ref_name]
            what = f"rnnkit <= {factor} x {label}"
            if rk is None or ref_time is None:
                lines.append(f"target {wl_name}: {what}: cannot judge (rnnkit or the reference not measured)")
            else:
                met = "MET" if rk / ref_time <= factor else "NOT MET"
                lines.append(
                    f"target {wl_name}: {what}: rnnkit {fmt_ms(rk)} ms / {fmt_ms(ref_time)} ms "
                    f"= {rk / ref_time:.2f} (target <= {factor}) -> {met}"
                )
        if wl_name == "W3":
            if rk is not None and self.sgemm:
                gflops = step_flops(WORKLOADS["W3"]) / rk / 1e9
                best = step_flops(WORKLOADS["W3"]) / res["rnnkit"]["min"] / 1e9
                need = W3_SGEMM_FRACTION * self.sgemm
                met = "MET" if gflops >= need else "NOT MET"
                lines.append(
                    f"target W3: rnnkit >= {W3_SGEMM_FRACTION:.0%} of sgemm ({self.sgemm:.1f} GFLOP/s, the best "
                    f"sgemm measured so far): {gflops:.1f} GFLOP/s = {gflops / self.sgemm:.0%} (needs >= "
                    f"{need:.1f}) -> {met}; fastest step {best:.1f} GFLOP/s = {best / self.sgemm:.0%}"
                )
                computed = (step_flops(WORKLOADS["W3"]) - input_gradient_flops(WORKLOADS["W3"])) / rk / 1e9
                lines.append(
                    f"          (the count includes the input gradient, which rnnkit skips for a first layer; "
                    f"over the products it computes: {computed:.1f} GFLOP/s = {computed / self.sgemm:.0%})"
                )
            else:
                lines.append("target W3: >= 85% of sgemm: cannot judge")
            if "rnnkit" in self.memory and "torch" in self.memory:
                (rk_peak, rk_base), (pt_peak, pt_base) = self.memory["rnnkit"], self.memory["torch"]
                met = "MET" if rk_peak <= pt_peak else "NOT MET"
                met2 = "MET" if rk_peak - rk_base <= pt_peak - pt_base else "NOT MET"
                lines.append(
                    f"target W3: peak RSS <= PyTorch's: rnnkit {rk_peak / 1024:.0f} MiB vs PyTorch "
                    f"{pt_peak / 1024:.0f} MiB -> {met}"
                )
                lines.append(
                    f"          (growth over the post-import RSS, i.e. without the libraries' own footprint: "
                    f"rnnkit {(rk_peak - rk_base) / 1024:.0f} MiB vs PyTorch {(pt_peak - pt_base) / 1024:.0f} "
                    f"MiB -> {met2})"
                )
            else:
                lines.append("target W3: peak RSS <= PyTorch's: cannot judge (rnnkit or PyTorch not measured)")
        return lines

    def print_workload(self, wl_name, seconds, load):
        wl = WORKLOADS[wl_name]
        res = self.results[wl_name]
        out()
        out(f"== {wl_name}: {wl['title']}   [{seconds:.0f} s, load avg at start {load}]")
        epoch = wl["mode"] == "epoch"
        flops = None if epoch else step_flops(wl)
        rk = res.get("rnnkit", {}).get("median")
        unit = "s/epoch" if epoch else "ms/step"
        header = f"   {'framework':<22}{'median ' + unit:>16}{'p25-p75' if not epoch else 'min-max':>20}{'n':>6}"
        header += (
            f"{'GFLOP/s':>9}{'min':>10}{'rnnkit/peer':>13}{'(of mins)':>11}" if not epoch else f"{'rnnkit/peer':>13}"
        )
        out(header)
        for fw, r in res.items():
            label = LABELS[fw]
            if "median" not in r:
                status = r.get("skip") or "FAILED: " + r.get("error", "?")
                out(f"   {label:<22}{status}")
                continue
            if epoch:
                spread = f"{r['q1']:.2f}-{r['q3']:.2f}"
                line = f"   {label:<22}{r['median']:>16.2f}{spread:>20}{r['n']:>6}"
            else:
                spread = f"{fmt_ms(r['q1'])}-{fmt_ms(r['q3'])}"
                line = (
                    f"   {label:<22}{fmt_ms(r['median']):>16}{spread:>20}{r['n']:>6}"
                    f"{flops / r['median'] / 1e9:>9.1f}{fmt_ms(r['min']):>10}"
                )
            if fw != "rnnkit" and rk is not None:
                line += f"{rk / r['median']:>13.2f}"
                if not epoch:
                    line += f"{res['rnnkit']['min'] / r['min']:>11.2f}"
            out(line)
        for fw, note in self.notes.get(wl_name, {}).items():
            out(f"   note {LABELS[fw]}: {note}")
        if wl_name in self.cut:
            out(
                f"   rounds cut to {self.cut[wl_name]} of {self.rounds} by the {self.budget_s} s time budget per "
                "workload"
            )
        if not epoch and self.sgemm:
            out(f"   FLOPs per step {flops / 1e9:.3f} G (matrix products only); sgemm here {self.sgemm:.1f} GFLOP/s")
        if wl_name == "W3" and self.memory:
            parts = [
                f"{LABELS[fw]} {peak / 1024:.0f} MiB (+{(peak - base) / 1024:.0f} over {base / 1024:.0f} after import)"
                for fw, (peak, base) in self.memory.items()
            ]
            out("   peak RSS (each framework in its own process, W3 first): " + "; ".join(parts))
        if wl_name.startswith("W1-") and "rnnkit" in res and "median" in res["rnnkit"]:
            base = self.results.get("W1", {}).get("rnnkit", {}).get("median")
            if base:
                out(
                    "   rnnkit with this option / plain W1 (measured in the W1 group) = "
                    f"{res['rnnkit']['median'] / base:.2f}"
                )
        for line in self.verdicts(wl_name):
            out("   " + line)

    def summary(self):
        out()
        out("== Targets of the issue (rnnkit / reference; <= target is met)")
        for wl_name in PRINT_ORDER:
            if wl_name in self.results:
                for line in self.verdicts(wl_name):
                    out("   " + line)
        out()
        out("== Median ms per step (W7: s per epoch); ratio rnnkit / peer in brackets")
        cols = [fw for fw in self.workers]
        out(f"   {'':<14}" + "".join(f"{LABELS[fw]:>22}" for fw in cols))
        for wl_name in PRINT_ORDER:
            res = self.results.get(wl_name)
            if res is None:
                continue
            rk = res.get("rnnkit", {}).get("median")
            cells = []
            for fw in cols:
                r = res.get(fw, {})
                if "median" not in r:
                    cells.append("-" if "skip" in r or not r else "failed")
                    continue
                value = f"{r['median']:.2f}" if wl_name == "W7" else fmt_ms(r["median"])
                if fw != "rnnkit" and rk is not None:
                    value += f" ({rk / r['median']:.2f})"
                cells.append(value)
            out(f"   {wl_name:<14}" + "".join(f"{c:>22}" for c in cells))

    # -- driver --------------------------------------------------------------------------------
    def main(self):
        args = self.args
        t_start = time.perf_counter()
        out(
            f"rnnkit peer benchmark (CPU) -- {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, mode: "
            f"{'quick' if args.quick else 'full' if args.full else 'default'}"
        )
        out(f"CPU: {cpu_model()}; {os.cpu_count()} logical CPUs ({len(os.sched_getaffinity(0))} usable)")
        out(f"load average at start: {loadavg()}")
        if os.getloadavg()[0] > 0.5 * len(os.sched_getaffinity(0)):
            out(
                "WARNING: the machine is busy (load average above half the CPUs): times are inflated and noisy, "
                "most for frameworks that synchronise their threads many times per step (PyTorch's OpenMP loops); "
                "the 'min' column shows the least disturbed step"
            )
        out(f"python {platform.python_version()}, {platform.platform()}")
        self.sgemm_runs = [sgemm_gflops()]
        self.sgemm = self.sgemm_runs[0]
        import numpy as np

        out(
            f"sgemm: numpy {np.__version__} ({numpy_blas()}, default threads = all cores) float32 2048x2048 product, "
            f"median of 7: {self.sgemm:.1f} GFLOP/s (measured again before W3 and at the end)"
        )

        ok, missing = available_frameworks()
        wanted = args.frameworks.split(",") if args.frameworks else FRAMEWORKS
        unknown = [fw for fw in wanted if fw not in LABELS]
        if unknown:
            raise SystemExit(f"unknown frameworks {unknown}; choose from {FRAMEWORKS + OPTIONAL_FRAMEWORKS}")
        fws = []
        for fw in wanted:
            if fw in ok:
                fws.append(fw)
            else:
                out(f"{LABELS[fw]}: {missing[fw]} -- skipped")
        if args.only:
            names = []
            for name in args.only.split(","):
                names += VARIANTS if name == "W1v" else [name]
            unknown = [n for n in names if n not in WORKLOADS]
            if unknown:
                raise SystemExit(f"unknown workloads {unknown}; choose from {list(WORKLOADS)} or W1v (all variants)")
            selected = [n for n in RUN_ORDER if n in names]
        else:
            selected = [n for n in RUN_ORDER if not (n == "W7" and args.quick)]
        out(
            f"workloads: {', '.join(n for n in PRINT_ORDER if n in selected)}; "
            f"{self.rounds} alternating rounds of ~{self.block_s * 1e3:.0f} ms blocks per framework after "
            f"~{self.warm_s:.1f} s warm-up; "
            + (f"W7 {'3 times' if args.full else 'once'} per framework" if "W7" in selected else "W7 not run")
        )
        out("Every framework runs in its own process with its default thread settings, which use all cores:")

        for fw in fws:
            self.workers[fw] = Worker(fw)
        try:
            for fw in list(self.workers):
                try:
                    info = self.workers[fw].ask("info", timeout=300)
                except WorkerDied as exc:
                    out(f"   {LABELS[fw]}: FAILED to start: {exc}")
                    continue
                if "error" in info:
                    out(f"   {LABELS[fw]}: FAILED to start: {info['error']}")
                    self.workers[fw].dead = info["error"]
                    continue
                out(
                    f"   {LABELS[fw]:<22}{info['version']}; {info['threads']}; import {info['import_s']:.1f} s, "
                    f"RSS after import {info['rss_kib'] / 1024:.0f} MiB"
                )
            out(
                "FLOPs are counted for the matrix products only: forward 2*G*H*(F+H)*B*T per direction "
                "(G = 4 LSTM, 3 GRU; input projection + recurrent product), a train step 3x forward "
                "(forward, dgates->dx/dh, dW); pointwise math, BatchNormalization and Dense are not counted."
            )
            live = [fw for fw in self.workers if not self.workers[fw].dead]
            for wl_name in selected:
                self.run_workload(wl_name, [fw for fw in live if not self.workers[fw].dead])
        finally:
            for w in self.workers.values():
                w.close()
        self.sgemm_runs.append(sgemm_gflops())
        self.sgemm = max(self.sgemm_runs)
        self.summary()
        out()
        out(
            f"sgemm GFLOP/s measured at start{', before W3' if len(self.sgemm_runs) > 2 else ''} and at end: "
            f"{', '.join(f'{g:.1f}' for g in self.sgemm_runs)}; the W3 target above uses the best, {self.sgemm:.1f} "
            "(a busy machine lowers every measurement)"
        )
        out(f"load average at end: {loadavg()}")
        out(f"total wall time {time.perf_counter() - t_start:.0f} s")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions, skip W7")
    p.add_argument("--full", action="store_true", help="run W7 three times per framework (alternated)")
    p.add_argument("--only", help="comma-separated workloads: " + ",".join(PRINT_ORDER) + " or W1v (all variants)")
    p.add_argument("--frameworks", help="comma-separated: " + ",".join(FRAMEWORKS + OPTIONAL_FRAMEWORKS))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p.parse_args(argv)


if __name__ == "__main__":
    _args = parse_args()
    if _args.worker:
        worker_main(_args.worker)
    else:
        Bench(_args).main()
