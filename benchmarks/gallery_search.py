"""Gallery search: the default exact search (fhsdk.kernels.cosine_topk) against FAISS indexes.

Random unit 128-D rows stand in for a large gallery: they have no clusters, the hardest case for the
approximate indexes (real face embeddings cluster by identity, so recall there is higher). Each size
times one batch of queries per method, repetitions interleaved so all see the same machine load, and
reports medians, the speed ratio to cosine_topk (> 1: faster) and recall@1 against the exact top-1,
for random queries and for probes of enrolled rows (a row plus noise: what a face seen again looks like).
CPU only; the machine's other load makes absolute times noisy: read the ratios.

    python benchmarks/gallery_search.py                       # 100k and 1M rows, 64 queries per batch
    python benchmarks/gallery_search.py --sizes 20000 --reps 3 # quick
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

import numpy as np

from fhsdk.gallery import Gallery


def unit_rows(n, dim, seed):
    rng = np.random.default_rng(seed)
    rows = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in slices: float64 normals of 1M rows would take 1 GB
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        rows[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return rows


def median_seconds(fns, reps):
    """Median seconds of each callable, repetitions interleaved, after one warm-up call each."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(reps):
        for i, fn in enumerate(fns):
            started = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - started)
    return [statistics.median(t) for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=64, help="queries per timed batch (faces in a batch of frames)")
    parser.add_argument("--recall-queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--kinds", nargs="+", default=["faiss-flat", "faiss-hnsw", "faiss-ivf"])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 256], help="HNSW settings to time")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[16, 64], help="IVF settings to time")
    args = parser.parse_args()

    import faiss

    print(
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, "
        f"faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads); {args.queries} queries per batch, "
        f"k={args.k}, {args.dim}-D float32, median of {args.reps}; each method interleaved with cosine_topk; "
        f"recall@1 against exact on {args.recall_queries} random unit queries and on {args.recall_queries} "
        f"probes of enrolled rows (row + noise, cosine ~0.8 to it)\n"
    )
    print(
        "| rows | method | build s | ms per batch | cosine_topk ms, same pairing | speed vs cosine_topk "
        "| recall@1 random | recall@1 probes |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    settings = {
        "faiss-flat": [{}],
        "faiss-hnsw": [{"ef_search": e} for e in args.ef_search],
        "faiss-ivf": [{"nprobe": p} for p in args.nprobe],
    }
    for n in args.sizes:
        exact = Gallery(args.dim)
        exact._replace(
            ["row"] * n, unit_rows(n, args.dim, seed=0)
        )  # built directly: add() would copy and renormalise 1M rows
        queries = unit_rows(args.queries, args.dim, seed=1)
        recall_queries = unit_rows(args.recall_queries, args.dim, seed=2)
        truth = exact.search(recall_queries, 1)[0][:, 0]
        # probes of enrolled people: gallery rows plus noise, cosine ~0.8 to their row (a face seen again)
        planted = np.random.default_rng(3).choice(n, args.recall_queries, replace=False)
        noise = np.random.default_rng(4).standard_normal((args.recall_queries, args.dim), dtype=np.float32)
        probes = exact.embeddings[planted] + 0.75 / np.sqrt(args.dim) * noise
        probe_truth = exact.search(probes, 1)[0][:, 0]
        baseline = median_seconds([lambda: exact.search(queries, args.k)], args.reps)[0]
        row(n, "cosine_topk (default)", None, baseline, baseline, [1.0, 1.0])
        for kind in args.kinds:
            indexed = copy.copy(exact)  # shares the embeddings; holds its own index
            started = time.perf_counter()
            indexed.build_index(kind)
            build = time.perf_counter() - started
            for params in settings[kind]:
                indexed.tune_index(**params)
                t_exact, t_index = median_seconds(
                    [lambda: exact.search(queries, args.k), lambda: indexed.search(queries, args.k)], args.reps
                )
                recall = [
                    float((indexed.search(q, 1)[0][:, 0] == t).mean())
                    for q, t in ((recall_queries, truth), (probes, probe_truth))
                ]
                label = " ".join([kind, *(f"{k}={v}" for k, v in params.items())])
                row(n, label, build, t_index, t_exact, recall)
            indexed.drop_index()


def row(n, label, build, seconds, exact_seconds, recall):
    print(
        f"| {n:,} | {label} | {'-' if build is None else f'{build:.1f}'} | {1e3 * seconds:.2f} | "
        f"{1e3 * exact_seconds:.2f} | {exact_seconds / seconds:.2f}x | {recall[0]:.3f} | {recall[1]:.3f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
