"""MTCNN's three networks (P-Net, R-Net, O-Net) in PyTorch, loaded from the `mtcnn` PyPI package.

The package (ipazc/mtcnn 1.x, MIT) ships the weights of Zhang et al.'s MTCNN as joblib/lz4 files,
each a list of Keras-ordered arrays: conv kernels HWIO, PReLU alphas (1, 1, C) shared over space,
dense kernels (in, out). Its Keras nets take RGB images normalised as (x - 127.5) / 128, not
transposed; convolutions are 'valid'; the pools are TF 'same' or 'valid' as noted per layer; the
first dense layer reads the last conv map flattened in (W, H, C) order (a Permute((2, 1, 3)) then
Flatten over NHWC). Softmax outputs are [not-face, face].
"""

from __future__ import annotations

import inspect
import pickle

import lz4.frame
import numpy as np
import torch
from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler
from torch import nn

from fhsdk.errors import WeightsError
from fhsdk.weights import package_file

WEIGHTS_PACKAGE = "mtcnn"
WEIGHTS_FILES = {
    "pnet": "assets/weights/pnet.lz4",
    "rnet": "assets/weights/rnet.lz4",
    "onet": "assets/weights/onet.lz4",
}


def max_pool_same(kernel_size: int, stride: int) -> nn.MaxPool2d:
    """TensorFlow's 'same' max pooling for the sizes MTCNN meets, as a plain (ONNX-exportable) op.

    TF 'same' gives ceil(n / stride) outputs and pads the end first. With ceil_mode, torch lets the
    last window hang over the end instead, which is the same pooling whenever TF's total pad is
    at most 1: always for 2x2 stride 2 (P-Net, any image size), and for 3x3 stride 2 on the even
    sizes R-Net and O-Net see (22 and 46).
    """
    return nn.MaxPool2d(kernel_size, stride, ceil_mode=True)


def _flatten_keras_order(x: torch.Tensor) -> torch.Tensor:
    # Keras permutes NHWC to NWHC before Flatten, so features run over (W, H, C), C fastest.
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """Proposal net: fully convolutional, 12x12 receptive field, stride 2. Returns (face prob map, box reg map)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = max_pool_same(2, 2)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 4, 1)  # box regression
        self.conv4_2 = nn.Conv2d(32, 2, 1)  # face classification

    keras_order = ("conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "conv4_1", "conv4_2")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x).softmax(dim=1)[:, 1], self.conv4_1(x)


class RNet(nn.Module):
    """Refinement net on 24x24 crops. Returns (face prob, box regression)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = max_pool_same(3, 2)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2)  # 'valid'
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.fc4 = nn.Linear(3 * 3 * 64, 128)
        self.prelu4 = nn.PReLU(128)
        self.fc5_1 = nn.Linear(128, 4)
        self.fc5_2 = nn.Linear(128, 2)

    keras_order = ("conv1", "prelu1", "conv2", "prelu2", "conv3", "prelu3", "fc4", "prelu4", "fc5_1", "fc5_2")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.fc4(_flatten_keras_order(x)))
        return self.fc5_2(x).softmax(dim=1)[:, 1], self.fc5_1(x)


class ONet(nn.Module):
    """Output net on 48x48 crops. Returns (face prob, box regression, landmarks as 5 x then 5 y in [0, 1])."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = max_pool_same(3, 2)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2)  # 'valid'
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = max_pool_same(2, 2)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.fc5 = nn.Linear(3 * 3 * 128, 256)
        self.prelu5 = nn.PReLU(256)
        self.fc6_1 = nn.Linear(256, 4)
        self.fc6_2 = nn.Linear(256, 10)
        self.fc6_3 = nn.Linear(256, 2)

    keras_order = (
        "conv1",
        "prelu1",
        "conv2",
        "prelu2",
        "conv3",
        "prelu3",
        "conv4",
        "prelu4",
        "fc5",
        "prelu5",
        "fc6_1",
        "fc6_2",
        "fc6_3",
    )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.fc5(_flatten_keras_order(x)))
        return self.fc6_3(x).softmax(dim=1)[:, 1], self.fc6_1(x), self.fc6_2(x)


def _keras_to_torch(module: nn.Module, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The Keras arrays of one layer, reordered to the torch parameters' layout."""
    if isinstance(module, nn.Conv2d):
        return [arrays[0].transpose(3, 2, 0, 1), arrays[1]]  # HWIO -> OIHW
    if isinstance(module, nn.Linear):
        return [arrays[0].T, arrays[1]]  # (in, out) -> (out, in)
    if isinstance(module, nn.PReLU):
        return [arrays[0].reshape(-1)]  # (1, 1, C) shared over space -> (C,)
    raise TypeError(f"no Keras conversion for {type(module).__name__}")


def load_keras_weights(net: nn.Module, arrays: list[np.ndarray], name: str) -> nn.Module:
    """Copy a Keras-ordered weight list into `net` (layers in `net.keras_order`), checking every shape."""
    arrays = list(arrays)
    position = 0
    with torch.no_grad():
        for layer_name in net.keras_order:
            layer = getattr(net, layer_name)
            params = list(layer.parameters())
            if position + len(params) > len(arrays):
                raise WeightsError(
                    f"{name}: the weight file has too few arrays for layer {layer_name}; reinstall the `mtcnn` package"
                )
            converted = _keras_to_torch(layer, arrays[position : position + len(params)])
            for param, value in zip(params, converted):
                if tuple(param.shape) != value.shape:
                    raise WeightsError(
                        f"{name}: layer {layer_name} expects {tuple(param.shape)} but the weight "
                        f"file gives {value.shape}; reinstall the `mtcnn` package"
                    )
                param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
            position += len(params)
    if position != len(arrays):
        raise WeightsError(
            f"{name}: the weight file has {len(arrays) - position} arrays left over; reinstall the `mtcnn` package"
        )
    return net.eval()


def load_pretrained(name: str) -> nn.Module:
    """One of 'pnet', 'rnet', 'onet' with the `mtcnn` package's weights, in eval mode."""
    net = {"pnet": PNet, "rnet": RNet, "onet": ONet}[name]()
    path = package_file(WEIGHTS_PACKAGE, WEIGHTS_FILES[name])
    try:
        arrays = _load_arrays(path)
    except Exception as error:  # joblib raises many types for a corrupt file
        raise WeightsError(f"cannot read MTCNN weights {path} ({error}); reinstall the `mtcnn` package") from error
    return load_keras_weights(net, arrays, name)


class _ArraysOnlyUnpickler(NumpyUnpickler):
    """joblib's unpickler, limited to the globals a list of NumPy arrays needs: a weight file that
    names any other callable is refused instead of run (joblib.load would run it). Arrays of Python
    objects are refused before their payload is read: joblib < 1.5 reads that payload with a plain,
    unrestricted pickle.load, which would run whatever code it names, past find_class."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("joblib.numpy_pickle", "NumpyArrayWrapper")}
    _NATIVE_ORDER = "ensure_native_byte_order" in inspect.signature(NumpyArrayWrapper.read).parameters  # joblib >= 1.5

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused global {module}.{name}: MTCNN weight files hold arrays only")
        return super().find_class(module, name)

    def load_build(self):
        pickle._Unpickler.load_build(self)  # sets the wrapper's state (shape, dtype): nothing is read yet
        wrapper = self.stack[-1]
        if not isinstance(wrapper, NumpyArrayWrapper):
            return
        if wrapper.dtype.hasobject:
            raise pickle.UnpicklingError(
                "refused an array of Python objects: MTCNN weight files hold numeric arrays only"
            )
        self.stack[-1] = wrapper.read(self, True) if self._NATIVE_ORDER else wrapper.read(self)

    dispatch = dict(NumpyUnpickler.dispatch)
    dispatch[pickle.BUILD[0]] = load_build


def _load_arrays(path) -> list:
    extra = {"ensure_native_byte_order": True} if _ArraysOnlyUnpickler._NATIVE_ORDER else {}
    with lz4.frame.open(path, "rb") as handle:
        return _ArraysOnlyUnpickler(str(path), handle, **extra).load()
