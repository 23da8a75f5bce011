"""Deployment presets of the networks in fhsdk/models (export I/O, TensorRT profiles), from each
model's own constants: the recogniser's input side and embedding size are written once, in dlib_resnet.py."""

from __future__ import annotations

from fhsdk.models import dlib_resnet
from fhsdk.models.registry import create_model
from fhsdk.runtime.base import ModelIO, TensorSpec
from fhsdk.runtime.presets import F32, ModelPreset, image_spec, register_preset

_SIDE, _DIM = dlib_resnet.INPUT_SIZE, dlib_resnet.EMBEDDING_DIM
register_preset(
    ModelPreset(
        name="dlib_resnet_v1",
        io=ModelIO(
            (image_spec((-1, 3, _SIDE, _SIDE)),),
            (TensorSpec("embedding", F32, (-1, _DIM)),),
            {"image": (1, 3, _SIDE, _SIDE)},
        ),
        build=lambda: create_model("dlib_resnet_v1").eval(),
        batch_range=(1, 64, 256),  # the embedder sends batches of 64 (Embedder.batch_size)
        notes=f"dlib's {_DIM}-D face recogniser; input normalised RGB {_SIDE}x{_SIDE}",
    )
)

# Hallucinators are fully convolutional; the SDK sends each gated face at the model's native side
# (32 px for the packaged EDSR models) in batches of 64, so the profile's optimum is 64 x 32 x 32 and
# its range covers the 8-32 px sides other models are trained at (output is scale x larger).
for _generator in ("edsr", "rrdb", "sicnn", "srgan", "dsnet"):
    register_preset(
        ModelPreset(
            name=_generator,
            io=ModelIO(
                (image_spec((-1, 3, -1, -1)),), (TensorSpec("sr", F32, (-1, 3, -1, -1)),), {"image": (1, 3, 16, 16)}
            ),
            build=lambda name=_generator: create_model(name).eval(),
            batch_range=(1, 64, 256),
            spatial_range=((8, 8), (32, 32), (32, 32)),
            pretrained=False,
            notes="input in [0, 1], output upscaled by the model's scale",
        )
    )
