"""Writing evaluation results: JSON, a markdown table, and a plot of accuracy against LR size."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def markdown_table(result) -> str:
    if result.meta.get("protocol") == "pipeline":
        return _pipeline_table(result)
    header = "| query | LR side (px) | inter-ocular (px) | accuracy (%) | VR@FAR=0.1% (%) | id cosine | PSNR (dB) | SSIM | rank-1 (%) |"
    lines = [header, "|" + "---|" * 9]
    for row in result.rows:

        def pct(key, row=row):
            return _pct(row, key)

        accuracy = f"{100 * row['accuracy']:.2f} ± {100 * row['accuracy_std']:.2f}"
        psnr = f"{row['psnr']:.2f}" if "psnr" in row else "–"
        ssim = f"{row['ssim']:.3f}" if "ssim" in row else "–"
        lines.append(
            f"| {row['query']} | {row['lr_side'] or 'HR'} | {row['interocular_px']:.1f} | {accuracy} | "
            f"{pct('vr_at_far_0.1%')} | {row['identity_cosine']:.3f} | {psnr} | {ssim} | {pct('rank1')} |"
        )
    return "\n".join(lines) + "\n"


def _pct(row: dict, key: str) -> str:
    return f"{100 * row[key]:.2f}" if row.get(key) is not None else "–"


def _pipeline_table(result) -> str:
    """The end-to-end protocol: accuracy counts detection misses as errors; the misses are shown beside it."""
    header = (
        "| query | side (px) | queries found (%) | pairs found (%) | accuracy (%) | accuracy, found pairs (%) | "
        "VR@FAR=0.1% (%) | hallucinated (%) | detected side, median (px) | id cosine | rank-1 (%) |"
    )
    lines = [header, "|" + "---|" * 11]
    for row in result.rows:
        side = row.get("detected_side_median")
        lines.append(
            f"| {row['query']} | {row['lr_side'] or 'HR'} | {_pct(row, 'queries_found')} | {_pct(row, 'pairs_found')} | "
            f"{100 * row['accuracy']:.2f} ± {100 * row['accuracy_std']:.2f} | {_pct(row, 'accuracy_found_pairs')} | "
            f"{_pct(row, 'vr_at_far_0.1%')} | {_pct(row, 'hallucinated')} | {f'{side:.1f}' if side else '–'} | "
            f"{row['identity_cosine']:.3f} | {_pct(row, 'rank1')} |"
        )
    return "\n".join(lines) + "\n"


def plot_accuracy(results: dict[str, object], path: Path) -> bool:
    """One line per hallucinator: verification accuracy against LR side, HR ceiling dashed. Returns
    False, writing nothing, where matplotlib (the `plot` extra) is not installed."""
    try:  # optional: the `plot` extra
        import matplotlib
    except ImportError:
        logger.info("matplotlib is not installed (pip install 'fhsdk[plot]'): no plot written to %s", path)
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after choosing the headless backend

    figure, axis = plt.subplots(figsize=(6, 4))
    for name, result in results.items():
        lr_rows = [row for row in result.rows if row["lr_side"]]
        axis.plot([r["lr_side"] for r in lr_rows], [100 * r["accuracy"] for r in lr_rows], marker="o", label=name)
        ceiling = [row for row in result.rows if not row["lr_side"]]
        if ceiling:
            axis.axhline(100 * ceiling[0]["accuracy"], linestyle="--", color="grey")
    axis.set_xlabel("LR crop side (px)")
    axis.set_ylabel("LFW verification accuracy (%)")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def write_outputs(result, out_dir: Path, name: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / f"lfw_{name}.json",
        "markdown": out_dir / f"lfw_{name}.md",
        "plot": out_dir / f"lfw_{name}.png",
    }
    paths["json"].write_text(result.to_json())
    paths["markdown"].write_text(markdown_table(result))
    if not plot_accuracy({name: result}, paths["plot"]):
        del paths["plot"]
    return paths
