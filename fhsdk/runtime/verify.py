"""Parity verification: a backend's outputs against PyTorch FP32 on the same inputs.

Per output the report gives max and mean absolute error and the cosine similarity between
reference and candidate rows (each sample's output flattened; a 1-D output such as a face
probability per sample is compared as one vector). An output passes when its minimum row cosine
reaches the threshold, and its max abs error the optional bound. Defaults: cosine >= 0.99999 for
FP32 backends and >= 0.999 for FP16 (the recogniser's embedding requirement).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fhsdk.errors import InvalidInputError
from fhsdk.runtime.base import Backend, to_numpy

logger = logging.getLogger(__name__)

DEFAULT_MIN_COSINE = {"fp32": 0.99999, "fp16": 0.999}


@dataclass(frozen=True)
class OutputComparison:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    cosine_min: float
    cosine_mean: float
    min_cosine: float  # threshold
    max_abs_bound: float | None
    passed: bool
    note: str = ""  # why it failed beyond the numbers (shape mismatch, non-finite values)


@dataclass(frozen=True)
class VerifyResult:
    backend: str
    device: str
    precision: str
    outputs: tuple[OutputComparison, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "device": self.device,
            "precision": self.precision,
            "status": self.status,
            "outputs": [asdict(o) for o in self.outputs],
        }

    def table(self) -> str:
        lines = [
            f"{self.backend} ({self.device}, {self.precision}) vs torch FP32: {self.status}",
            "| output | shape | max abs | mean abs | cos min | cos mean | need cos >= | result |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for o in self.outputs:
            lines.append(
                f"| {o.name} | {'x'.join(map(str, o.shape))} | {o.max_abs:.3g} | {o.mean_abs:.3g} | "
                f"{o.cosine_min:.6f} | {o.cosine_mean:.6f} | {o.min_cosine} | "
                f"{'PASS' if o.passed else 'FAIL'}{' (' + o.note + ')' if o.note else ''} |"
            )
        return "\n".join(lines)


def row_cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Cosine per sample (row = one sample's output flattened; 1-D outputs are one row).

    Two all-zero rows are identical (cosine 1); one zero row against a non-zero row scores 0.
    """
    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    if ref.ndim <= 1:
        ref, cand = ref.reshape(1, -1), cand.reshape(1, -1)
    else:
        ref, cand = ref.reshape(ref.shape[0], -1), cand.reshape(cand.shape[0], -1)
    ref_norm = np.linalg.norm(ref, axis=1)
    cand_norm = np.linalg.norm(cand, axis=1)
    dots = np.einsum("ij,ij->i", ref, cand)
    denom = ref_norm * cand_norm
    both_zero = (ref_norm == 0) & (cand_norm == 0)
    cos = np.where(denom > 0, dots / np.where(denom > 0, denom, 1.0), 0.0)
    return np.where(both_zero, 1.0, np.clip(cos, -1.0, 1.0))


def compare_outputs(
    reference: Mapping[str, Any],
    candidate: Mapping[str, Any],
    min_cosine: float | Mapping[str, float] = DEFAULT_MIN_COSINE["fp32"],
    max_abs: float | Mapping[str, float] | None = None,
) -> tuple[OutputComparison, ...]:
    """Compare two dicts of outputs name by name (thresholds global or per output name)."""
    if set(reference) != set(candidate):
        raise InvalidInputError(
            f"outputs differ in names: reference {sorted(reference)}, candidate {sorted(candidate)}"
        )
    comparisons = []
    for name in reference:
        ref = to_numpy(reference[name]).astype(np.float64)
        cand = to_numpy(candidate[name]).astype(np.float64)
        need_cos = min_cosine[name] if isinstance(min_cosine, Mapping) else min_cosine
        bound = max_abs.get(name) if isinstance(max_abs, Mapping) else max_abs
        if ref.shape != cand.shape:
            comparisons.append(
                OutputComparison(
                    name=name,
                    shape=tuple(ref.shape),
                    max_abs=float("inf"),
                    mean_abs=float("inf"),
                    cosine_min=float("nan"),
                    cosine_mean=float("nan"),
                    min_cosine=float(need_cos),
                    max_abs_bound=bound,
                    passed=False,
                    note=f"shape {cand.shape} != reference {ref.shape}",
                )
            )
            continue
        error = np.abs(ref - cand)
        finite = bool(np.isfinite(cand).all())
        cos = row_cosines(ref, cand) if finite else np.array([np.nan])
        max_err = float(error.max()) if error.size else 0.0
        passed = finite and float(cos.min()) >= need_cos and (bound is None or max_err <= bound)
        comparisons.append(
            OutputComparison(
                name=name,
                shape=tuple(ref.shape),
                max_abs=max_err,
                mean_abs=float(error.mean()) if error.size else 0.0,
                cosine_min=float(cos.min()),
                cosine_mean=float(cos.mean()),
                min_cosine=float(need_cos),
                max_abs_bound=bound,
                passed=passed,
                note="" if finite else "non-finite values",
            )
        )
    return tuple(comparisons)


def merge_comparisons(runs: Sequence[Sequence[OutputComparison]]) -> tuple[OutputComparison, ...]:
    """One comparison per output over several runs (e.g. two batch sizes): the worst of each."""
    merged = []
    for per_output in zip(*runs):
        first = per_output[0]
        merged.append(
            OutputComparison(
                name=first.name,
                shape=first.shape,
                max_abs=max(c.max_abs for c in per_output),
                mean_abs=float(np.mean([c.mean_abs for c in per_output])),
                cosine_min=float(np.min([c.cosine_min for c in per_output])),  # NaN-propagating
                cosine_mean=float(np.mean([c.cosine_mean for c in per_output])),
                min_cosine=first.min_cosine,
                max_abs_bound=first.max_abs_bound,
                passed=all(c.passed for c in per_output),
                note="; ".join(sorted({c.note for c in per_output if c.note})),
            )
        )
    return tuple(merged)


def verify_backend(
    backend: Backend,
    reference: Backend,
    inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    min_cosine: float | Mapping[str, float] | None = None,
    max_abs: float | Mapping[str, float] | None = None,
) -> VerifyResult:
    """Run `backend` and the FP32 `reference` on the same inputs (one dict, or several dicts whose
    results are concatenated per output) and compare every output."""
    if reference.precision != "fp32":
        raise InvalidInputError("the reference backend must run FP32")
    batches = [inputs] if isinstance(inputs, Mapping) else list(inputs)
    if min_cosine is None:
        min_cosine = DEFAULT_MIN_COSINE[backend.precision]
    ref_runs = [{k: to_numpy(v) for k, v in reference.run(b).items()} for b in batches]
    cand_runs = [{k: to_numpy(v) for k, v in backend.run(b).items()} for b in batches]
    runs = [compare_outputs(r, c, min_cosine, max_abs) for r, c in zip(ref_runs, cand_runs)]
    merged = merge_comparisons(runs)
    result = VerifyResult(backend.name, backend.device, backend.precision, merged)
    log = logger.info if result.passed else logger.warning
    log(
        "parity %s: %s",
        result.status,
        "; ".join(f"{o.name} max_abs={o.max_abs:.3g} cos_min={o.cosine_min:.6f}" for o in result.outputs),
    )
    return result
