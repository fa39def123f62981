"""Audio front-ends for speech models: `STFTSpectrogram` (a short-time Fourier transform computed
as a 1-D convolution with trainable Fourier kernels, as Keras's) and `MelSpectrogram` (numpy's
FFT, a mel filter bank and decibels)."""

import math
import warnings

import numpy as np

from rnnkit import ops
from rnnkit.layers.input_spec import InputSpec
from rnnkit.layers.layer import Layer
from rnnkit.ops.conv import data_format_of, output_length
from rnnkit.tape import needs_gradient
from rnnkit.tensor import convert_to_tensor

# Keras's `backend.epsilon()`: the floor of the power and magnitude before sqrt and log.
_EPSILON = 1e-7
# Cosine-sum windows `sum_k (-1)^k a_k cos(2 pi k n / M)`, as scipy.signal.get_window makes them.
_COSINE_WINDOWS = {
    "boxcar": (1.0,),
    "hann": (0.5, 0.5),
    "hamming": (0.54, 0.46),
    "blackman": (0.42, 0.5, 0.08),
}
_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")


def window_values(window, length, periodic=False):
    """The window's `length` values: a named cosine-sum window (symmetric, or periodic as for
    an FFT), or the given values.

    Args:
        window: "hann", "hamming", "blackman", "boxcar", or a sequence of `length` floats.
        length: The frame length.
        periodic: Whether a named window is periodic (its period is `length`) rather than
            symmetric (its ends equal).

    Returns:
        A float64 array of `length` values.

    Raises:
        ValueError: For an unknown name or values of another length.
    """
    if isinstance(window, str):
        coefficients = _COSINE_WINDOWS.get(window.lower())
        if coefficients is None:
            raise ValueError(f"window: expected one of {sorted(_COSINE_WINDOWS)} or an array, received {window!r}")
        if length == 1:
            return np.ones(1)
        phase = 2 * np.pi * np.arange(length) / (length if periodic else length - 1)
        return sum((-1) ** k * a * np.cos(k * phase) for k, a in enumerate(coefficients))
    values = np.asarray(window, dtype="float64")
    if values.shape != (length,):
        raise ValueError(
            f"The shape of `window` must be equal to [frame_length]. Received: window shape={values.shape}"
        )
    return values


def fourier_kernel(side, window, scaling, periodic, frame_length, bins, dtype):
    """The `(frame_length, 1, bins)` real (cosine) or imaginary (minus sine) Fourier kernel,
    windowed and scaled, as Keras's `STFT` initializer makes it (its FFT length is
    `2 * (bins - 1)`).

    Args:
        side: "real" or "imag".
        window: A window for `window_values`, or None for none.
        scaling: "density" (divide by the window's L2 norm), "spectrum" (by its L1 norm) or None.
        periodic: Whether a named window is periodic.
        frame_length: The frame length.
        bins: The number of frequency bins.
        dtype: The kernel's dtype.

    Returns:
        A numpy array.
    """
    time = np.arange(frame_length, dtype="float64")[:, None, None]
    freq = np.arange(bins, dtype="float64")[None, None, :] / (2 * (bins - 1))
    angles = -2.0 * time * freq * np.pi
    kernel = np.cos(angles) if side == "real" else np.sin(angles)
    if window is not None:
        win = window_values(window, frame_length, periodic)[:, None, None]
        scale = {"density": np.sqrt(np.sum(win**2)), "spectrum": np.sum(np.abs(win)), None: 1.0}[scaling]
        kernel = kernel * win / scale
    return kernel.astype(dtype)


def _check_int(name, value, minimum, optional=False):
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(
            f"{name}: expected an integer >= {minimum}{' or None' if optional else ''}, received {value!r}"
        )


class STFTSpectrogram(Layer):
    """The short-time Fourier transform of each channel of `(batch, time, channels)` signals, as
    Keras's: frames of `frame_length` samples every `frame_step`, windowed, and a real FFT of
    `fft_length`, computed as a strided 1-D convolution with the trainable kernels
    `real_kernel` and `imag_kernel` `(frame_length, 1, fft_length // 2 + 1)` (both initialised
    to the windowed Fourier basis; fine-tuned like any weight).

    The output is `(batch, frames, channels * bins)` (channels_last; `(batch, channels * bins,
    frames)` channels_first), or with `expand_dims` `(batch, frames, bins, channels)`
    (`(batch, channels, frames, bins)`); bins double for mode "stft" (real parts, then imaginary).

    Args:
        mode: "log" (log magnitude), "magnitude", "psd" (power, doubled at inner bins), "real",
            "imag", "angle" (phase) or "stft" (real and imaginary parts).
        frame_length: Samples per frame.
        frame_step: Samples between frames, in `[1, frame_length]`; `frame_length // 2` when None.
        fft_length: FFT size, at least `frame_length`; the next power of two when None.
        window: "hann", "hamming", "blackman", "boxcar", `frame_length` floats, or None.
        periodic: Whether a named window is periodic rather than symmetric.
        scaling: "density", "spectrum" or None: divide the kernels by the window's L2 norm, L1
            norm, or nothing.
        padding: "valid" or "same" framing of the signal.
        expand_dims: Whether channels get their own output axis.
        data_format: "channels_last" (None) or "channels_first".
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        mode="log",
        frame_length=256,
        frame_step=None,
        fft_length=None,
        window="hann",
        periodic=False,
        scaling="density",
        padding="valid",
        expand_dims=False,
        data_format=None,
        **kwargs,
    ):
        _check_int("frame_length", frame_length, 1)
        if frame_step is not None and (
            isinstance(frame_step, bool)
            or not isinstance(frame_step, (int, np.integer))
            or not 1 <= frame_step <= frame_length
        ):
            raise ValueError(
                "`frame_step` should be a positive integer not greater than `frame_length`. "
                f"Received frame_step={frame_step}, frame_length={frame_length}"
            )
        _check_int("fft_length", fft_length, 2, optional=True)
        if fft_length is not None and fft_length < frame_length:
            raise ValueError(
                "`fft_length` should be not less than `frame_length`. "
                f"Received fft_length={fft_length}, frame_length={frame_length}"
            )
        if fft_length is not None and fft_length & (fft_length - 1):
            warnings.warn(
                f"`fft_length` is recommended to be a power of two. Received fft_length={fft_length}", stacklevel=2
            )
        if mode not in _MODES:
            raise ValueError(f"Output mode is invalid, it must be one of {', '.join(_MODES)}. Received: mode={mode}")
        if scaling not in ("density", "spectrum", None):
            raise ValueError(
                f"Scaling is invalid, it must be `None`, 'density' or 'spectrum'. Received scaling={scaling}"
            )
        if padding not in ("valid", "same"):
            raise ValueError(f"Padding is invalid, it should be 'valid', 'same'. Received: padding={padding}")
        if window is not None:
            window_values(window, frame_length, periodic)
            window = window if isinstance(window, str) else [float(v) for v in np.asarray(window).reshape(-1)]
        super().__init__(**kwargs)
        self.mode = mode
        self.frame_length = int(frame_length)
        self.frame_step = None if frame_step is None else int(frame_step)
        self.fft_length = None if fft_length is None else int(fft_length)
        self.window = window
        self.periodic = bool(periodic)
        self.scaling = scaling
        self.padding = padding
        self.expand_dims = bool(expand_dims)
        self.data_format = data_format_of(data_format)
        self.input_spec = InputSpec(ndim=3)

    @property
    def _step(self):
        return self.frame_step or max(self.frame_length // 2, 1)

    @property
    def _bins(self):
        fft_length = self.fft_length or 2 ** math.ceil(math.log2(self.frame_length))
        return max(fft_length, 2) // 2 + 1

    def build(self, input_shape):
        shape = (self.frame_length, 1, self._bins)
        args = (self.window, self.scaling, self.periodic, self.frame_length, self._bins)
        if self.mode != "imag":
            self.real_kernel = self.add_weight(
                name="real_kernel", shape=shape, initializer=lambda s, dtype: fourier_kernel("real", *args, dtype)
            )
        if self.mode != "real":
            self.imag_kernel = self.add_weight(
                name="imag_kernel", shape=shape, initializer=lambda s, dtype: fourier_kernel("imag", *args, dtype)
            )
        self.built = True

    def _frames(self, signals, kernel):
        """`(batch, channels, frames, bins)`: each channel convolved with the kernel."""
        batch, channels, steps = signals.shape
        flat = ops.reshape(signals, (batch * channels, steps, 1))
        out = ops.conv(flat, kernel, strides=self._step, padding=self.padding)
        return ops.reshape(out, (batch, channels, out.shape[1], out.shape[2]))

    def _layout(self, z):
        """`(batch, channels, frames, bins)` to the output's layout."""
        batch, channels, frames, bins = z.shape
        if self.data_format == "channels_last":
            if self.expand_dims:
                return ops.transpose(z, (0, 2, 3, 1))
            return ops.reshape(ops.transpose(z, (0, 2, 1, 3)), (batch, frames, channels * bins))
        if self.expand_dims:
            return z
        return ops.reshape(ops.transpose(z, (0, 1, 3, 2)), (batch, channels * bins, frames))

    def call(self, inputs):
        signals = inputs if self.data_format == "channels_first" else ops.transpose(inputs, (0, 2, 1))
        real = self._frames(signals, self.real_kernel) if self.mode != "imag" else None
        imag = self._frames(signals, self.imag_kernel) if self.mode != "real" else None
        if self.mode in ("real", "imag"):
            return self._layout(real if self.mode == "real" else imag)
        if self.mode == "angle":
            return self._layout(ops.arctan2(imag, real))
        if self.mode == "stft":
            return self._layout(ops.concatenate([real, imag], axis=3))
        power = ops.square(real) + ops.square(imag)
        if self.mode == "psd":
            return self._layout(power + ops.pad(power[..., 1:-1], [[0, 0], [0, 0], [0, 0], [1, 1]]))
        magnitude = self._layout(ops.sqrt(ops.maximum(power, _EPSILON)))
        return magnitude if self.mode == "magnitude" else ops.log(ops.maximum(magnitude, _EPSILON))

    def compute_output_shape(self, input_shape):
        """The output's shape for `(batch, time, channels)` (or channels_first) inputs."""
        batch = input_shape[0]
        channels, steps = (input_shape[2], input_shape[1])
        if self.data_format == "channels_first":
            channels, steps = input_shape[1], input_shape[2]
        frames = None if steps is None else output_length(steps, self.frame_length, self._step, 1, self.padding)
        bins = self._bins * (2 if self.mode == "stft" else 1)
        if self.expand_dims:
            return (
                (batch, frames, bins, channels)
                if self.data_format == "channels_last"
                else (batch, channels, frames, bins)
            )
        features = None if channels is None else channels * bins
        return (batch, frames, features) if self.data_format == "channels_last" else (batch, features, frames)

    def get_config(self):
        return {
            **super().get_config(),
            "mode": self.mode,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "fft_length": self.fft_length,
            "window": self.window,
            "periodic": self.periodic,
            "scaling": self.scaling,
            "padding": self.padding,
            "data_format": self.data_format,
            "expand_dims": self.expand_dims,
        }


# The mel scale of HTK (as Keras and TensorFlow): mel(f) = 1127 ln(1 + f / 700).
_MEL_BREAK_HERTZ = 700.0
_MEL_HIGH_Q = 1127.0


def _hertz_to_mel(hertz):
    return _MEL_HIGH_Q * np.log(1.0 + np.asarray(hertz, "float64") / _MEL_BREAK_HERTZ)


def mel_weight_matrix(num_mel_bins, num_spectrogram_bins, sampling_rate, lower_edge_hertz, upper_edge_hertz):
    """The `(num_spectrogram_bins, num_mel_bins)` matrix of triangular mel filters (peak 1,
    edges evenly spaced on the mel scale between the two edges) over the linear FFT bins of
    `[0, sampling_rate / 2]`, the DC bin weighted 0, as Keras's `linear_to_mel_weight_matrix`.

    Args:
        num_mel_bins: Mel bands.
        num_spectrogram_bins: FFT bins, `fft_length // 2 + 1`.
        sampling_rate: Samples per second.
        lower_edge_hertz: Lower edge of the lowest band.
        upper_edge_hertz: Upper edge of the highest band.

    Returns:
        A float64 array.
    """
    bins_mel = _hertz_to_mel(np.linspace(0.0, sampling_rate / 2.0, num_spectrogram_bins)[1:])[:, None]
    edges = np.linspace(_hertz_to_mel(lower_edge_hertz), _hertz_to_mel(upper_edge_hertz), num_mel_bins + 2)
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    return np.pad(np.maximum(0.0, np.minimum(rising, falling)), [[1, 0], [0, 0]])


class MelSpectrogram(Layer):
    """The mel spectrogram of audio signals `(batch, samples)` or `(samples,)`, as Keras's:
    frames of `sequence_length` samples every `sequence_stride` from the signal padded by
    reflection (`fft_length // 2` each side), a periodic window, numpy's FFT of `fft_length`,
    magnitudes to the power `mag_exp`, a mel filter bank, and optionally decibels. The output is
    `(batch, num_mel_bins, frames)` (`(num_mel_bins, frames)` for one signal).

    A preprocessing layer computed in numpy: it has no weights and is not differentiable (a
    tape watching its input raises an error rather than receiving no gradient). With
    `power_to_db`, `top_db` clips below the largest value of the whole call's output (the
    batch's), as Keras does.

    Args:
        fft_length: FFT size (at least `sequence_length`).
        sequence_stride: Samples between frames.
        sequence_length: Samples per frame (windowed, then zero-padded to `fft_length` around
            its center); `fft_length` when None.
        window: "hann", "hamming", `sequence_length` floats, or None.
        sampling_rate: Samples per second of the signals.
        num_mel_bins: Mel bands.
        min_freq: Lower edge of the lowest band, in Hz.
        max_freq: Upper edge of the highest band, in Hz; `sampling_rate / 2` when None.
        power_to_db: Whether to convert the mel powers to decibels.
        top_db: With `power_to_db`, the floor below the largest value, in dB.
        mag_exp: The exponent of the magnitudes (2: power, 1: magnitude).
        min_power: With `power_to_db`, the smallest power before the logarithm.
        ref_power: With `power_to_db`, the power of 0 dB.
        **kwargs: Base `Layer` arguments.
    """

    def __init__(
        self,
        fft_length=2048,
        sequence_stride=512,
        sequence_length=None,
        window="hann",
        sampling_rate=16000,
        num_mel_bins=128,
        min_freq=20.0,
        max_freq=None,
        power_to_db=True,
        top_db=80.0,
        mag_exp=2.0,
        min_power=1e-10,
        ref_power=1.0,
        **kwargs,
    ):
        _check_int("fft_length", fft_length, 2)
        _check_int("sequence_stride", sequence_stride, 1)
        _check_int("sequence_length", sequence_length, 1, optional=True)
        _check_int("num_mel_bins", num_mel_bins, 1)
        sequence_length = sequence_length or fft_length
        if fft_length < sequence_length:
            raise ValueError(
                "`fft_length` must be greater than or equal to `sequence_length`. Received: "
                f"`sequence_length`={sequence_length}, `fft_length`={fft_length}."
            )
        if isinstance(window, str) and window not in ("hann", "hamming"):
            raise ValueError(
                f'If a string is passed to `window`, it must be one of `"hann"`, `"hamming"`. Received: window={window}'
            )
        if window is not None:
            window_values(window, sequence_length)
            window = window if isinstance(window, str) else [float(v) for v in np.asarray(window).reshape(-1)]
        for name, value in (("sampling_rate", sampling_rate), ("min_power", min_power)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name}: expected a positive number, received {value!r}")
        max_freq = max_freq or int(sampling_rate / 2)
        if not 0 <= min_freq < max_freq:
            raise ValueError(
                f"min_freq and max_freq: expected 0 <= min_freq < max_freq, received {min_freq}, {max_freq}"
            )
        super().__init__(**kwargs)
        self.fft_length = int(fft_length)
        self.sequence_stride = int(sequence_stride)
        self.sequence_length = int(sequence_length)
        self.window = window
        self.sampling_rate = sampling_rate
        self.num_mel_bins = int(num_mel_bins)
        self.min_freq = min_freq
        self.max_freq = max_freq
        self.power_to_db = bool(power_to_db)
        self.top_db = top_db
        self.mag_exp = mag_exp
        self.min_power = min_power
        self.ref_power = ref_power
        self.input_spec = InputSpec(min_ndim=1, max_ndim=2)
        self.built = True

    def _spectrogram(self, signals):
        """`(..., frames, fft_length // 2 + 1)` magnitudes to the power `mag_exp`."""
        half = self.fft_length // 2
        padded = np.pad(signals, [(0, 0)] * (signals.ndim - 1) + [(half, half)], mode="reflect")
        count = 1 + (padded.shape[-1] - self.fft_length) // self.sequence_stride
        starts = np.arange(count) * self.sequence_stride
        frames = padded[..., starts[:, None] + np.arange(self.fft_length)]
        left = (self.fft_length - self.sequence_length) // 2
        window = np.zeros(self.fft_length)
        if self.window is None:
            window[left : left + self.sequence_length] = 1.0
        else:
            window[left : left + self.sequence_length] = window_values(self.window, self.sequence_length, True)
        return np.abs(np.fft.rfft(frames * window, n=self.fft_length, axis=-1)) ** self.mag_exp

    def call(self, inputs):
        if needs_gradient(inputs):
            raise ValueError(
                f"Layer {self.name}: MelSpectrogram is computed in numpy and is not differentiable; call it "
                "outside the GradientTape (as preprocessing) or stop the gradient of its input."
            )
        signals = np.asarray(inputs, dtype="float64")
        spectrum = self._spectrogram(signals)
        mel = spectrum @ mel_weight_matrix(
            self.num_mel_bins, spectrum.shape[-1], self.sampling_rate, self.min_freq, self.max_freq
        )
        if self.power_to_db:
            mel = 10.0 * np.log10(np.maximum(mel, self.min_power))
            mel -= 10.0 * np.log10(max(abs(self.ref_power), self.min_power))
            mel = np.maximum(mel, mel.max() - self.top_db)
        return convert_to_tensor(np.swapaxes(mel, -1, -2).astype(self.dtype))

    def compute_output_shape(self, input_shape):
        """`(batch, num_mel_bins, frames)` (without the batch axis for one signal)."""
        steps = input_shape[-1]
        frames = (
            None
            if steps is None
            else 1 + (steps + 2 * (self.fft_length // 2) - self.fft_length) // self.sequence_stride
        )
        return (*tuple(input_shape)[:-1], self.num_mel_bins, frames)

    def get_config(self):
        return {
            **super().get_config(),
            "fft_length": self.fft_length,
            "sequence_stride": self.sequence_stride,
            "sequence_length": self.sequence_length,
            "window": self.window,
            "sampling_rate": self.sampling_rate,
            "num_mel_bins": self.num_mel_bins,
            "min_freq": self.min_freq,
            "max_freq": self.max_freq,
            "power_to_db": self.power_to_db,
            "top_db": self.top_db,
            "mag_exp": self.mag_exp,
            "min_power": self.min_power,
            "ref_power": self.ref_power,
        }
