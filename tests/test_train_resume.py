"""Resume: k steps, stop, resume to 2k steps == 2k steps straight (weights, optimiser state, logged losses)."""

import pytest
import torch

from fhsdk.errors import ConfigError
from train.runner import read_log, train
from train.testing import make_center_crop_cache, tiny_config


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache_path(celeba_dir, tmp_path_factory):
    return make_center_crop_cache(
        celeba_dir, tmp_path_factory.mktemp("cache") / "faces.npz", identities=3, per_identity=4
    )


def _assert_same_state(a: dict, b: dict, path: str = "") -> None:
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            _assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.allclose(a.float(), b.float(), rtol=1e-5, atol=1e-6), path
    else:
        assert a == b, path


def _losses(path):
    return [{k: float(v) for k, v in row.items() if k != "sec" and v != ""} for row in read_log(path)]


# cface crosses its stage boundaries (and the super-resolved set) across the interruption;
# fhgan draws gradient-penalty points; lai draws a degradation factor per batch.
@pytest.mark.parametrize(
    "method,extra",
    [
        ("lai", []),
        ("fhgan", []),
        ("cface", ["stages={gan: 3, recognizer: 3, joint: 4}"]),
        ("sicnn", []),
        ("ipfsrgan", ["loss.pixel_only_steps=3"]),
        ("distill", []),
        ("pipeline_finetune", []),  # pipeline-way inputs: area shrink, jitter table, bilinear to the input side
    ],
)
def test_resume_reproduces_uninterrupted_run(method, extra, cache_path, tmp_path):
    k = 5
    cfg = tiny_config(method, cache_path, steps=2 * k, extra=["train.checkpoint_every=2", "data.batch_size=3", *extra])
    straight = train(cfg, tmp_path / "straight", seed=1, progress=False)
    first = train(cfg, tmp_path / "resumed", seed=1, progress=False, stop_after=k)
    assert first["step"] == k  # stopped between checkpoints: a checkpoint is written where it stopped
    resumed = train(cfg, tmp_path / "resumed", seed=1, progress=False, resume=True)
    assert resumed["step"] == 2 * k
    _assert_same_state(straight["procedure"].state_dict(), resumed["procedure"].state_dict())
    a, b = _losses(tmp_path / "straight" / "log.csv"), _losses(tmp_path / "resumed" / "log.csv")
    assert [r["step"] for r in b] == list(range(1, 2 * k + 1))
    for row_a, row_b in zip(a, b):
        assert row_a.keys() == row_b.keys()
        for key in row_a:
            assert row_a[key] == pytest.approx(row_b[key], rel=1e-5, abs=1e-7), (row_a["step"], key)


def test_resume_refuses_a_different_config(cache_path, tmp_path):
    cfg = tiny_config("lai", cache_path, steps=2)
    train(cfg, tmp_path / "run", seed=0, progress=False)
    changed = tiny_config("lai", cache_path, steps=4, extra=["loss.identity_weight=1.0"])
    with pytest.raises(ConfigError, match="differs"):
        train(changed, tmp_path / "run", seed=0, progress=False, resume=True)
    # Extending the step budget is allowed.
    longer = tiny_config("lai", cache_path, steps=4)
    assert train(longer, tmp_path / "run", seed=0, progress=False, resume=True)["step"] == 4
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tmp_path / "fresh", seed=0, progress=False, resume=True)


def test_kept_checkpoints_average_into_one_export(cache_path, tmp_path):
    from train.export_weights import export_recognizer, export_run
    from train.runner import load_checkpoint

    cfg = tiny_config("distill", cache_path, steps=6, extra=["train.checkpoint_every=1", "train.keep_every=3"])
    train(cfg, tmp_path / "run", seed=0, progress=False)
    folder = tmp_path / "run" / "checkpoints"
    # the rolling two (5, 6) and every third step's (3, 6)
    assert sorted(p.name for p in folder.glob("step_*.pt")) == [f"step_{s:07d}.pt" for s in (3, 5, 6)]
    three, six = folder / "step_0000003.pt", folder / "step_0000006.pt"
    mean = torch.load(export_recognizer(tmp_path / "run", [three, six], tmp_path / "mean.pt"), weights_only=True)
    ends = [
        torch.load(export_recognizer(tmp_path / "run", c, tmp_path / f"{c.stem}.pt"), weights_only=True)
        for c in (three, six)
    ]
    assert any(not torch.equal(ends[0][k], ends[1][k]) for k in mean)  # the student moved between them
    for k, v in mean.items():  # floating-point tensors averaged; integer buffers (BN's counters) kept
        assert (
            torch.allclose(v, (ends[0][k] + ends[1][k]) / 2, atol=1e-7)
            if v.is_floating_point()
            else v.dtype == ends[0][k].dtype
        )
    export_run(tmp_path / "run", [three, six], tmp_path / "generator.pt")  # a generator averages the same way
    other = tiny_config("lai", cache_path, steps=1)
    train(other, tmp_path / "other", seed=0, progress=False)
    with pytest.raises(ConfigError, match="one run"):
        export_recognizer(tmp_path / "run", [three, tmp_path / "other" / "checkpoints" / "last.pt"])
    assert load_checkpoint(six)["step"] == 6
