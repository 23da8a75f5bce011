"""Benchmarks of the native kernels (fhsdk.kernels) against what one would write without them.

Each case times the fused kernel and its baseline in one run, interleaving repetitions (A, B, A, B,
...) so that both see the same machine load, and reports medians and the ratio baseline / kernel
(> 1: the kernel is faster). Prints a markdown table and writes JSON.

    python benchmarks/bench_kernels.py                      # CPU, all cases
    python benchmarks/bench_kernels.py --quick              # CPU, small subset, few repetitions
    python benchmarks/bench_kernels.py --device cuda        # GPU machine: CUDA kernels vs torch

Cases (CPU):
  topk      fhsdk cosine_topk vs NumPy ``q @ g.T`` + argpartition + sort of the k
            (a float16 gallery is cast to float32 per call for NumPy, whose float16 matmul has no BLAS)
  affine    fused resize_normalize form (a) vs per face cv2.warpAffine + NumPy BGR->RGB, normalise,
            HWC->CHW, stacked into one NCHW batch; 1920x1080 frame
  batch     resize_normalize form (b) vs torch interpolate(bilinear) + normalise
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
SCALE = (1 / (0.229 * 255), 1 / (0.224 * 255), 1 / (0.225 * 255))


def interleaved(fns, reps, warmup=1, sync=None):
    """Median seconds of each callable, repetitions interleaved."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        for i, fn in enumerate(fns):
            if sync:
                sync()
            t = time.perf_counter()
            fn()
            if sync:
                sync()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) for t in times]


# ---- cosine_topk --------------------------------------------------------------------------------


def numpy_topk(q, g, k):
    g32 = g if g.dtype == np.float32 else g.astype(np.float32)
    sims = q @ g32.T
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(top, order, axis=1)


def bench_topk(args, rows):
    from fhsdk.kernels import cosine_topk

    rng = np.random.default_rng(0)
    for n in args.topk_n:
        g32 = rng.standard_normal((n, args.dim), dtype=np.float32)
        g32 /= np.linalg.norm(g32, axis=1, keepdims=True)
        for gdtype in ("float32", "float16"):
            g = g32 if gdtype == "float32" else g32.astype(np.float16)
            for b in args.topk_b:
                q = rng.standard_normal((b, args.dim), dtype=np.float32)
                q /= np.linalg.norm(q, axis=1, keepdims=True)
                reps = args.reps if n * b < 10_000_000 else max(3, args.reps // 3)
                ours, base = interleaved(
                    [lambda: cosine_topk(q, g, args.k, backend="cpu"), lambda: numpy_topk(q, g, args.k)], reps
                )
                # Both must agree on the scores (indices may swap on near-ties).
                np.testing.assert_allclose(cosine_topk(q, g, args.k)[1], numpy_topk(q, g, args.k)[1], atol=2e-3)
                rows.append(dict(op="cosine_topk", case=f"N={n} D={args.dim} B={b} k={args.k} {gdtype}",
                                 baseline="numpy matmul+argpartition", kernel_ms=ours * 1e3,
                                 baseline_ms=base * 1e3, ratio=base / ours))  # fmt: skip
                _progress(rows[-1])
        del g32


# ---- resize_normalize (a) -----------------------------------------------------------------------


def face_affines(rng, count, out_side, frame_w=1920, frame_h=1080):
    """Forward (frame -> crop) similarity transforms of random faces of 24-240 px, some at borders."""
    mats = np.empty((count, 2, 3), dtype=np.float64)
    for i in range(count):
        side = rng.uniform(24, 240)
        cx, cy = rng.uniform(-20, frame_w + 20), rng.uniform(-20, frame_h + 20)
        angle = rng.uniform(-0.3, 0.3)
        s = out_side / side
        c, sn = s * np.cos(angle), s * np.sin(angle)
        mats[i] = [[c, -sn, 0.0], [sn, c, 0.0]]
        mats[i, :, 2] = out_side / 2 - mats[i, :, :2] @ np.array([cx, cy])
    return mats


def opencv_numpy_faces(frame, mats, side):
    import cv2

    mean = np.asarray(MEAN, np.float32)
    scale = np.asarray(SCALE, np.float32)
    out = np.empty((len(mats), 3, side, side), np.float32)
    for i, m in enumerate(mats):
        crop = cv2.warpAffine(frame, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        out[i] = ((crop[..., ::-1].astype(np.float32) - mean) * scale).transpose(2, 0, 1)
    return out


def bench_affine(args, rows):
    import cv2

    from fhsdk.kernels import resize_normalize_affine

    rng = np.random.default_rng(1)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8), (0, 0), 2)
    for side in args.sides:
        for faces in args.faces:
            mats = face_affines(rng, faces, side)
            ours, base = interleaved(
                [lambda: resize_normalize_affine(frame, mats, side, MEAN, SCALE, backend="cpu"),
                 lambda: opencv_numpy_faces(frame, mats, side)], args.reps)  # fmt: skip
            diff = np.abs(
                resize_normalize_affine(frame, mats, side, MEAN, SCALE) - opencv_numpy_faces(frame, mats, side)
            )
            rows.append(dict(op="resize_normalize (a)", case=f"1920x1080 frame, {faces} faces -> {side}x{side}",
                             baseline="per face cv2.warpAffine + numpy", kernel_ms=ours * 1e3,
                             baseline_ms=base * 1e3, ratio=base / ours,
                             max_abs_diff_normalised=float(diff.max())))  # fmt: skip
            _progress(rows[-1])


# ---- resize_normalize (b) -----------------------------------------------------------------------


def bench_batch(args, rows):
    import torch

    from fhsdk.kernels import resize_normalize_batch

    mean_t = torch.tensor(MEAN).view(1, 3, 1, 1)
    scale_t = torch.tensor(SCALE).view(1, 3, 1, 1)
    rng = np.random.default_rng(2)
    for b in args.faces:
        x = rng.uniform(0, 255, (b, 3, args.batch_in, args.batch_in)).astype(np.float32)
        xt = torch.from_numpy(x)

        def torch_path():
            y = torch.nn.functional.interpolate(xt, size=(150, 150), mode="bilinear", align_corners=False)
            return ((y - mean_t) * scale_t).numpy()

        ours, base = interleaved([lambda: resize_normalize_batch(x, 150, MEAN, SCALE, backend="cpu"), torch_path],
                                 args.reps)  # fmt: skip
        rows.append(dict(op="resize_normalize (b)", case=f"{b} x 3 x {args.batch_in}^2 -> 150^2",
                         baseline="torch interpolate + normalise", kernel_ms=ours * 1e3, baseline_ms=base * 1e3,
                         ratio=base / ours))  # fmt: skip
        _progress(rows[-1])


# ---- CUDA ---------------------------------------------------------------------------------------


def bench_cuda(args, rows):
    import torch

    from fhsdk.kernels import cosine_topk, resize_normalize_affine, resize_normalize_batch

    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    gen = torch.Generator(device=dev).manual_seed(0)
    for n in args.topk_n:
        g32 = torch.nn.functional.normalize(torch.randn(n, args.dim, device=dev, generator=gen), dim=1)
        for gdtype in (torch.float32, torch.float16):
            g = g32.to(gdtype)
            for b in args.topk_b:
                q = torch.nn.functional.normalize(torch.randn(b, args.dim, device=dev, generator=gen), dim=1)

                def torch_topk():
                    return torch.topk(q @ g.float().T if gdtype == torch.float16 else q @ g.T, args.k, dim=1)

                ours, base = interleaved([lambda: cosine_topk(q, g, args.k), torch_topk], args.reps, sync=sync)
                torch.testing.assert_close(cosine_topk(q, g, args.k)[1], torch_topk().values, atol=2e-3, rtol=0)
                rows.append(dict(op="cosine_topk (cuda)", case=f"N={n} D={args.dim} B={b} k={args.k} {gdtype}",
                                 baseline="torch matmul+topk", kernel_ms=ours * 1e3, baseline_ms=base * 1e3,
                                 ratio=base / ours))  # fmt: skip
                _progress(rows[-1])
    rng = np.random.default_rng(1)
    frame = torch.from_numpy(rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)).to(dev)
    mean_t = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    scale_t = torch.tensor(SCALE, device=dev).view(1, 3, 1, 1)
    for side in args.sides:
        for faces in args.faces:
            mats = face_affines(rng, faces, side)

            def torch_affine():  # affine_grid + grid_sample, the usual torch route
                inv = torch.as_tensor(
                    np.linalg.inv(np.concatenate([mats, np.tile([[[0, 0, 1.0]]], (faces, 1, 1))], 1))[:, :2],
                    device=dev,
                    dtype=torch.float32,
                )
                img = frame.permute(2, 0, 1)[None].float().flip(1)
                ys, xs = torch.meshgrid(torch.arange(side, device=dev), torch.arange(side, device=dev), indexing="ij")
                pts = torch.stack([xs, ys, torch.ones_like(xs)], -1).float().view(1, -1, 3)
                src = pts @ inv.transpose(1, 2)
                grid = torch.stack([src[..., 0] / (1920 - 1) * 2 - 1, src[..., 1] / (1080 - 1) * 2 - 1], -1)
                out = torch.nn.functional.grid_sample(
                    img.expand(faces, -1, -1, -1),
                    grid.view(faces, side, side, 2),
                    align_corners=True,
                    padding_mode="zeros",
                )
                return (out - mean_t) * scale_t

            ours, base = interleaved([lambda: resize_normalize_affine(frame, mats, side, MEAN, SCALE), torch_affine],
                                     args.reps, sync=sync)  # fmt: skip
            rows.append(dict(op="resize_normalize (a) (cuda)", case=f"1920x1080, {faces} faces -> {side}^2",
                             baseline="torch affine grid_sample + normalise", kernel_ms=ours * 1e3,
                             baseline_ms=base * 1e3, ratio=base / ours))  # fmt: skip
            _progress(rows[-1])
    for b in args.faces:
        x = torch.rand(b, 3, args.batch_in, args.batch_in, device=dev) * 255

        def torch_batch():
            y = torch.nn.functional.interpolate(x, size=(150, 150), mode="bilinear", align_corners=False)
            return (y - mean_t) * scale_t

        ours, base = interleaved(
            [lambda: resize_normalize_batch(x, 150, MEAN, SCALE), torch_batch], args.reps, sync=sync
        )
        torch.testing.assert_close(resize_normalize_batch(x, 150, MEAN, SCALE), torch_batch(), atol=1e-4, rtol=1e-5)
        rows.append(dict(op="resize_normalize (b) (cuda)", case=f"{b} x 3 x {args.batch_in}^2 -> 150^2",
                         baseline="torch interpolate + normalise", kernel_ms=ours * 1e3, baseline_ms=base * 1e3,
                         ratio=base / ours))  # fmt: skip
        _progress(rows[-1])


# ---- report -------------------------------------------------------------------------------------


def _progress(row):
    print(f"  {row['op']:<28} {row['case']:<45} {row['kernel_ms']:9.3f} ms vs {row['baseline_ms']:9.3f} ms  "
          f"x{row['ratio']:.2f}", file=sys.stderr, flush=True)  # fmt: skip


def markdown(rows):
    lines = ["| op | case | kernel ms | baseline | baseline ms | baseline / kernel |", "|---|---|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['op']} | {r['case']} | {r['kernel_ms']:.3f} | {r['baseline']} | "
                     f"{r['baseline_ms']:.3f} | {r['ratio']:.2f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--cases", nargs="+", default=["topk", "affine", "batch"], choices=["topk", "affine", "batch"])
    p.add_argument("--reps", type=int, default=9, help="interleaved repetitions per case (median reported)")
    p.add_argument("--quick", action="store_true", help="small subset, 5 repetitions")
    p.add_argument("--topk-n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--topk-b", type=int, nargs="+", default=[1, 8, 64])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--faces", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--sides", type=int, nargs="+", default=[150, 16])
    p.add_argument("--batch-in", type=int, default=128, help="side of the form (b) inputs (hallucinator output)")
    p.add_argument("--json", default="benchmarks/results/bench_kernels.json")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.topk_n, args.topk_b, args.faces = 5, [100_000], [1, 64], [8, 128]

    import cv2
    import torch

    from fhsdk import _C

    info = dict(device=args.device, machine=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
                fhsdk_threads=_C.default_num_threads(), torch_threads=torch.get_num_threads(),
                cv2_threads=cv2.getNumThreads(), numpy=np.__version__, torch=torch.__version__, cv2=cv2.__version__,
                reps=args.reps)  # fmt: skip
    rows = []
    if args.device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        bench_cuda(args, rows)
    else:
        if "topk" in args.cases:
            bench_topk(args, rows)
        if "affine" in args.cases:
            bench_affine(args, rows)
        if "batch" in args.cases:
            bench_batch(args, rows)
    print(f"Setup: {json.dumps(info)}\n")
    print(markdown(rows))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(dict(info=info, rows=rows), f, indent=1)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
