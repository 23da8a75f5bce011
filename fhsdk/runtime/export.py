"""ONNX export with dynamic axes, recorded provenance, and an ONNX Runtime parity check; and the
parity-checked FP16 graph of an FP32 export (`export_fp16`).

We use the TorchScript-based exporter (`dynamo=False`) with an explicit opset: it needs no
onnxscript, and it exports fhsdk's plain conv nets with named dynamic axes directly. Every file
records in metadata_props the model name, a SHA-256 of the weights (state_dict), the opset and the
torch version, so a deployed file can be traced to the weights it came from and an engine cache
can refuse a stale one.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from fhsdk._version import __version__
from fhsdk.errors import BackendUnavailableError, InvalidInputError, WeightsError
from fhsdk.files import atomic_write_bytes
from fhsdk.runtime.fp16_onnx import FP32_OP_LEVELS, FP32_OPS_KEY, SOURCE_KEY, convert_to_fp16, fp16_path_for
from fhsdk.runtime.onnxruntime_backend import OnnxRuntimeBackend
from fhsdk.runtime.presets import get_preset
from fhsdk.runtime.torch_backend import TorchBackend
from fhsdk.runtime.verify import DEFAULT_MIN_COSINE, OutputComparison, compare_outputs, merge_comparisons

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
# ONNX Runtime FP32 vs PyTorch FP32: only summation order differs.
EXPORT_MIN_COSINE = 0.99999
EXPORT_MAX_ABS_REL = 1e-3  # max abs error allowed, relative to the output's largest magnitude


def state_dict_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the model's state_dict (names, dtypes, shapes and values, in order)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ExportReport:
    path: Path
    model_name: str
    weights_sha256: str
    onnx_sha256: str
    opset: int
    parity: tuple[OutputComparison, ...]  # empty when the check was skipped
    random_weights: bool = False  # an untrained architecture: the check proves the export, not a model

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.parity)

    def summary(self) -> str:
        weights = (
            "RANDOM weights, not a trained model" if self.random_weights else f"weights {self.weights_sha256[:12]}"
        )
        lines = [f"exported {self.model_name} -> {self.path} (opset {self.opset}, {weights})"]
        for c in self.parity:
            verdict = "FAIL" if not c.passed else "export matches (random weights)" if self.random_weights else "PASS"
            lines.append(
                f"  {c.name}: max_abs={c.max_abs:.3g} cos_min={c.cosine_min:.7f} "
                f"{verdict}{' (' + c.note + ')' if c.note else ''}"
            )
        return "\n".join(lines)


def _as_tensors(example_inputs: Any, input_names: Sequence[str]) -> tuple[torch.Tensor, ...]:
    if isinstance(example_inputs, Mapping):
        example_inputs = [example_inputs[name] for name in input_names]
    elif isinstance(example_inputs, (torch.Tensor, np.ndarray)):
        example_inputs = [example_inputs]
    return tuple(torch.as_tensor(x) for x in example_inputs)


def export_onnx(
    model: torch.nn.Module,
    example_inputs: Any,
    path: str | os.PathLike,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]] | None = None,
    *,
    model_name: str | None = None,
    opset: int = DEFAULT_OPSET,
    check_inputs: Sequence[Mapping[str, np.ndarray]] | None = None,
    check: bool = True,
) -> ExportReport:
    """Export `model` (FP32, eval mode) to ONNX and check ONNX Runtime against PyTorch.

    `example_inputs`: tensor, tuple of tensors, or dict by input name, used for tracing.
    `check_inputs`: dicts by input name for the parity check (default: the example inputs);
    give several (e.g. batch 1 and batch 7) to prove the dynamic axes work.
    """
    if opset < 17:
        raise InvalidInputError(f"opset {opset} is too old: fhsdk exports with opset >= 17")
    model = model.eval().float().cpu()
    tensors = _as_tensors(example_inputs, input_names)
    model_name = model_name or type(model).__name__
    weights_hash = state_dict_sha256(model)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter announces its own deprecation; we choose it deliberately.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        torch.onnx.export(
            model,
            tensors,
            buffer,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={k: dict(v) for k, v in (dynamic_axes or {}).items()},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    metadata = {
        "fhsdk.model_name": model_name,
        "fhsdk.weights_sha256": weights_hash,
        "fhsdk.version": __version__,
        "fhsdk.opset": str(opset),
        "torch.version": torch.__version__,
    }
    onnx.helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    serialized = proto.SerializeToString()
    # Atomic: another process that finds the cached export (exported_onnx) must never read half of it.
    atomic_write_bytes(path, serialized)
    parity: tuple[OutputComparison, ...] = ()
    if check:
        feeds = list(check_inputs) if check_inputs else [{name: t.numpy() for name, t in zip(input_names, tensors)}]
        parity = check_onnx_parity(model, path, feeds, input_names, output_names)
    report = ExportReport(path, model_name, weights_hash, hashlib.sha256(serialized).hexdigest(), opset, parity)
    (logger.info if report.passed else logger.warning)("%s", report.summary())
    return report


def check_onnx_parity(
    model: torch.nn.Module,
    onnx_path: str | os.PathLike,
    feeds: Sequence[Mapping[str, np.ndarray]],
    input_names: Sequence[str],
    output_names: Sequence[str],
) -> tuple[OutputComparison, ...]:
    """ONNX Runtime (CPU) vs PyTorch FP32 on each feed; the worst result per output."""
    ort_backend = OnnxRuntimeBackend(onnx_path)
    torch_backend = TorchBackend(model, ort_backend.io)
    runs = []
    for feed in feeds:
        reference = torch_backend.run(feed)
        candidate = ort_backend.run(feed)
        bounds = {k: EXPORT_MAX_ABS_REL * max(1.0, float(np.abs(v).max(initial=0.0))) for k, v in reference.items()}
        runs.append(compare_outputs(reference, candidate, EXPORT_MIN_COSINE, bounds))
    by_name = {c.name: c for c in merge_comparisons(runs)}
    return tuple(by_name[name] for name in output_names)


def read_metadata(onnx_path: str | os.PathLike) -> dict[str, str]:
    """metadata_props of an ONNX file as a dict."""
    if not Path(onnx_path).is_file():
        raise WeightsError(f"ONNX file '{onnx_path}' does not exist: export it with `fhsdk export`")
    proto = onnx.load(os.fspath(onnx_path), load_external_data=False)
    return {prop.key: prop.value for prop in proto.metadata_props}


def export_preset(
    name: str,
    path: str | os.PathLike,
    model: torch.nn.Module | None = None,
    opset: int = DEFAULT_OPSET,
    check_batches: Sequence[int] = (1, 7),
    check_spatial: Sequence[tuple[int, int]] | None = None,
    check: bool = True,
) -> ExportReport:
    """Export a registered model with its preset IO (names, dynamic axes).

    The parity check runs every batch in `check_batches` (and, for inputs with dynamic H, W,
    every size in `check_spatial`, default: the example size and a larger one) through the one file.
    """
    preset = get_preset(name)
    model = model if model is not None else preset.build()
    example = preset.io.example_inputs(batch=1)
    feeds = []
    spatial_dynamic = any(2 in s.dynamic_axes for s in preset.io.inputs)
    sizes: list[tuple[int, int] | None] = [None]
    if spatial_dynamic:
        base = preset.io.example_shapes[preset.io.input_names[0]][2:]
        sizes = list(check_spatial or [tuple(base), (base[0] * 2 + 3, base[1] + 5)])
    for batch in check_batches:
        for size in sizes:
            feed = {}
            for seed, spec in enumerate(preset.io.inputs):
                shape = list(preset.io.example_shapes[spec.name])
                shape[0] = batch
                if size is not None and len(shape) == 4 and 2 in spec.dynamic_axes:
                    shape[2:] = size
                rng = np.random.default_rng(1000 * batch + seed)
                feed[spec.name] = rng.random(shape).astype(np.float32)
            feeds.append(feed)
    return export_onnx(
        model,
        example,
        path,
        preset.io.input_names,
        preset.io.output_names,
        preset.dynamic_axes(),
        model_name=name,
        opset=opset,
        check_inputs=feeds,
        check=check,
    )


@dataclass(frozen=True)
class Fp16Report:
    path: Path
    fp32_ops: tuple[str, ...]
    parity: tuple[OutputComparison, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.parity)

    def summary(self) -> str:
        lines = [f"FP16 graph {self.path.name}, kept FP32: {', '.join(self.fp32_ops) or 'nothing'}"]
        for c in self.parity:
            lines.append(
                f"  {c.name}: max_abs={c.max_abs:.3g} cos_min={c.cosine_min:.7f} {'PASS' if c.passed else 'FAIL'}"
            )
        return "\n".join(lines)


def fp16_parity(
    fp32_path: str | os.PathLike,
    fp16_path: str | os.PathLike,
    feeds: Sequence[Mapping[str, np.ndarray]],
    min_cosine: float = DEFAULT_MIN_COSINE["fp16"],
) -> tuple[OutputComparison, ...]:
    """The FP16 graph against its FP32 source under ONNX Runtime CPU, worst result per output."""
    reference = OnnxRuntimeBackend(fp32_path, intra_op_threads=1)
    candidate = OnnxRuntimeBackend(fp16_path, intra_op_threads=1, precision="fp16")
    runs = [compare_outputs(reference.run(feed), candidate.run(feed), min_cosine) for feed in feeds]
    return merge_comparisons(runs)


def export_fp16(
    fp32_path: str | os.PathLike,
    feeds: Sequence[Mapping[str, np.ndarray]] | None = None,
    levels: Sequence[Sequence[str]] = FP32_OP_LEVELS,
    output: str | os.PathLike | None = None,
) -> Fp16Report:
    """The parity-checked FP16 graph of an FP32 ONNX file (cached beside it unless `output`).

    Each level of `levels` (op types kept FP32) is tried in turn until the graph keeps the FP16
    parity bar (verify.DEFAULT_MIN_COSINE['fp16']) against the FP32 file under ONNX Runtime CPU on
    `feeds` (default: random inputs at batches 1 and 4, dynamic sizes 32). Only a passing graph is
    written; a cached one (same source digest) is returned with no parity rows. Raises
    BackendUnavailableError when no level passes.
    """
    fp32_path = Path(fp32_path)
    path = Path(output) if output else fp16_path_for(fp32_path)
    if path.is_file() and output is None:  # written only after passing, keyed by the source's digest
        metadata = read_metadata(path)
        if metadata.get(SOURCE_KEY) == hashlib.sha256(fp32_path.read_bytes()).hexdigest():
            return Fp16Report(path, tuple(filter(None, metadata.get(FP32_OPS_KEY, "").split(","))), ())
    if feeds is None:
        io = OnnxRuntimeBackend(fp32_path, intra_op_threads=1).io
        feeds = [_random_feed(io.inputs, batch, seed=batch) for batch in (1, 4)]
    candidate = path.with_name(path.stem + ".candidate.onnx")
    report = None
    try:
        for ops in levels:
            convert_to_fp16(fp32_path, candidate, ops)
            report = Fp16Report(path, tuple(ops), fp16_parity(fp32_path, candidate, feeds))
            logger.info("%s", report.summary())
            if report.passed:
                os.replace(candidate, path)
                return report
    finally:
        candidate.unlink(missing_ok=True)
    raise BackendUnavailableError(
        f"no FP16 version of '{fp32_path}' keeps parity with FP32 even with most ops in FP32:\n"
        f"{report.summary() if report else ''}\nrun it with precision='fp32'"
    )


def _random_feed(specs, batch: int, seed: int) -> dict[str, np.ndarray]:
    """Uniform [0, 1) inputs; dynamic non-batch axes get 32 (a size every fhsdk net accepts)."""
    rng = np.random.default_rng(seed)
    feed = {}
    for spec in specs:
        shape = [
            batch if axis == 0 and size < 0 else (32 if size < 0 else size) for axis, size in enumerate(spec.shape)
        ]
        feed[spec.name] = rng.random(shape).astype(spec.dtype)
    return feed
