"""Training data: face cache, Dataset, splits, batch order, degradations."""

import numpy as np
import pytest
import torch

from fhsdk.errors import ConfigError
from train.data import EpochBatchSampler, FaceCropDataset, load_cache, pick_face, split_indices
from train.degradations import Degradation, gaussian_blur, jpeg, random_hflip, resize
from train.testing import make_center_crop_cache


@pytest.fixture(scope="module")
def cache(celeba_dir, tmp_path_factory):
    path = make_center_crop_cache(
        celeba_dir, tmp_path_factory.mktemp("cache") / "faces.npz", identities=3, per_identity=4
    )
    return load_cache(path)


def test_dataset_items(cache):
    assert cache["images"].shape == (12, 128, 128, 3) and cache["images"].dtype == np.uint8
    ds = FaceCropDataset(cache)
    item = ds[5]
    assert item["hr"].shape == (3, 128, 128) and item["hr"].dtype == torch.float32
    assert 0 <= item["hr"].min() and item["hr"].max() <= 1 and item["hr"].std() > 0.05  # a real photo
    assert ds.num_classes == 3 and set(ds.labels.tolist()) == {0, 1, 2}
    assert torch.equal(ds.hr(torch.tensor([5]))[0], item["hr"])
    # RGB order: cache pixel (R, G, B) equals the item's channels.
    assert torch.equal(
        (item["hr"][:, 10, 20] * 255).round().to(torch.uint8), torch.from_numpy(cache["images"][5, 10, 20])
    )


def test_splits(cache):
    labels = np.repeat(np.arange(10), 5)
    train, val = split_indices(labels, "identity", 0.2, seed=0)
    assert len(set(labels[train]) & set(labels[val])) == 0 and len(set(labels[val])) == 2
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(50))
    train, val = split_indices(labels, "image", 0.2, seed=0)
    assert set(labels[val]) <= set(labels[train]) and len(val) == 10
    sub = FaceCropDataset(cache, np.array([4, 5, 6, 7]))
    assert sub.num_classes == 1 and len(sub) == 4


def test_batch_order_resumes_exactly():
    straight = EpochBatchSampler(10, 3, seed=7)
    batches = [b for _, b in zip(range(8), straight)]
    resumed = [b for _, b in zip(range(3), EpochBatchSampler(10, 3, seed=7, start_batch=5))]
    assert resumed == batches[5:]
    assert all(len(b) == 3 for b in batches)
    epoch = sum(batches[:3], [])
    assert len(set(epoch)) == 9 and epoch != sorted(epoch)  # one epoch: without replacement, shuffled
    assert batches[:3] != batches[3:6]  # a fresh order every epoch
    assert batches != [b for _, b in zip(range(8), EpochBatchSampler(10, 3, seed=8))]


def test_pick_face_prefers_large_central_faces():
    boxes = np.array([[0, 0, 40, 40], [80, 80, 130, 130], [150, 150, 200, 200]], dtype=np.float32)
    assert pick_face(boxes, (210, 210)) == 1
    boxes = np.array([[0, 0, 90, 90], [90, 90, 120, 120]], dtype=np.float32)
    assert pick_face(boxes, (210, 210)) == 0  # a much larger face wins even off centre


def test_bicubic_degradation(cache):
    hr = FaceCropDataset(cache).hr(torch.arange(4))
    g = torch.Generator().manual_seed(0)
    sides = set()
    for _ in range(20):
        lr, side = Degradation(native_side=32, factors=(4, 8, 16))(hr, g)
        assert lr.shape == (4, 3, 32, 32) and 0 <= lr.min() and lr.max() <= 1
        sides.add(side)
    assert sides == {32, 16, 8}
    lr, side = Degradation(native_side=32, factors=(4,))(hr, g)
    assert side == 32 and torch.allclose(lr, resize(hr, 32).clamp(0, 1))
    # x16 then back up: detail is gone, the image is much smoother than x4.
    lr16, _ = Degradation(native_side=32, factors=(16,))(hr, g)
    assert (lr16 - resize(hr, 32)).abs().mean() > (lr - resize(hr, 32)).abs().mean()


def test_realistic_degradation(cache):
    hr = FaceCropDataset(cache).hr(torch.arange(4))
    realistic = Degradation(
        native_side=32, factors=(4,), realistic=True, blur_sigma=(1.0, 2.0), noise_std=(4, 8), jpeg_quality=(20, 40)
    )
    a, _ = realistic(hr, torch.Generator().manual_seed(1))
    b, _ = realistic(hr, torch.Generator().manual_seed(1))
    c, _ = realistic(hr, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)  # reproducible from the generator
    plain, _ = Degradation(native_side=32)(hr, torch.Generator())
    assert 0.005 < (a - plain).abs().mean() < 0.1 and 0 <= a.min() and a.max() <= 1
    same = hr[:1].repeat(3, 1, 1, 1)
    blurred = gaussian_blur(same, torch.tensor([0.0, 1.0, 3.0]))
    assert torch.allclose(blurred[0], hr[0], atol=1e-3)
    sharpness = [b.diff(dim=-1).abs().mean() for b in blurred]
    assert sharpness[0] > sharpness[1] > sharpness[2]
    q10, q95 = jpeg(hr[:1], [10]), jpeg(hr[:1], [95])
    assert (q10 - hr[:1]).abs().mean() > (q95 - hr[:1]).abs().mean()


def test_realistic_fraction_mixes_clean_and_degraded(cache):
    hr = FaceCropDataset(cache).hr(torch.arange(4)).repeat(4, 1, 1, 1)  # 16 images
    plain, _ = Degradation(native_side=32)(hr, torch.Generator())
    mixed = Degradation(
        native_side=32,
        factors=(4,),
        realistic=True,
        realistic_fraction=0.5,
        blur_sigma=(1.0, 2.0),
        noise_std=(4, 8),
        jpeg_quality=(20, 40),
    )
    lr, _ = mixed(hr, torch.Generator().manual_seed(3))
    clean = [(x - y).abs().max() < 1e-5 for x, y in zip(lr, plain)]
    assert 0 < sum(clean) < len(clean)  # some images untouched, the others degraded
    none, _ = Degradation(native_side=32, realistic=True, realistic_fraction=0.0)(hr, torch.Generator())
    assert torch.allclose(none, plain, atol=1e-5)
    with pytest.raises(ConfigError, match="realistic_fraction"):
        Degradation(realistic=True, realistic_fraction=1.5)


def test_pipeline_degradation_is_the_pipelines_warp(cache):
    """mode=pipeline: the face area-shrunk to s px (a frame), then warped by fhsdk.align at the generator's
    input side, exactly as Pipeline feeds a gated face to a network hallucinator."""
    import torch.nn.functional as F

    from fhsdk.align import CANONICAL_TEMPLATE, align

    hr = FaceCropDataset(cache).hr(torch.arange(3))
    lr, side = Degradation(native_side=32, factors=(128 / 12,), mode="pipeline")(hr, torch.Generator())
    assert side == 12 and lr.shape == (3, 3, 32, 32)
    frames = (F.interpolate(hr, size=(12, 12), mode="area") * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    landmarks = CANONICAL_TEMPLATE * 12 - 0.5  # the region is the whole 12 px frame
    warped = np.stack([align(np.ascontiguousarray(f), landmarks[None], 32)[0] for f in frames])
    ours = (lr * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    inner = (slice(None), slice(1, -1), slice(1, -1))  # the warp's outermost pixels also sample its black border
    assert np.abs(ours[inner].astype(int) - warped[inner].astype(int)).max() <= 1
    assert (lr - Degradation(native_side=32, factors=(128 / 12,))(hr, torch.Generator())[0]).abs().mean() > 0.005


def test_jitter_table_misaligns_by_side(cache):
    hr = FaceCropDataset(cache).hr(torch.arange(2))
    table = {12: [0.1, 0.0, 0.1, 0.0, 0.0, 0.0], 24: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}
    jittered = Degradation(native_side=32, factors=(128 / 12,), mode="pipeline", jitter=table)
    plain = Degradation(native_side=32, factors=(128 / 12,), mode="pipeline")
    assert (jittered(hr, torch.Generator())[0] - plain(hr, torch.Generator())[0]).abs().mean() > 0.01
    at_24 = Degradation(native_side=32, factors=(128 / 24,), mode="pipeline", jitter=table)  # the zero row
    unjittered = Degradation(native_side=32, factors=(128 / 24,), mode="pipeline")(hr, torch.Generator())[0]
    assert torch.allclose(at_24(hr, torch.Generator())[0], unjittered, atol=1.5 / 255)  # an identity resampling
    with pytest.raises(ConfigError, match="6 numbers"):
        Degradation(jitter={12: [0.1, 0.1]})
    with pytest.raises(ConfigError, match="mode"):
        Degradation(mode="lanczos")


def test_hflip():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    flipped, mask = random_hflip(x, torch.Generator().manual_seed(0), p=1.0)
    assert mask.all() and torch.equal(flipped, x.flip(-1))
    same, mask = random_hflip(x, torch.Generator(), p=0.0)
    assert not mask.any() and torch.equal(same, x)


def test_build_cache_with_mtcnn(celeba_dir, tmp_path):
    pytest.importorskip("fhsdk.detect.mtcnn")
    align = pytest.importorskip("fhsdk.align")
    from train.data import build_cache

    path = build_cache(celeba_dir, tmp_path / "aligned.npz", hr_side=align.HR_SIDE, limit=6, progress=False)
    cache = load_cache(path)
    n = len(cache["labels"])
    assert n + len(cache["skipped"]) == 6 and n >= 4  # most CelebA photos have a frontal face
    assert cache["images"].shape == (n, 128, 128, 3) and cache["images"].dtype == np.uint8
    assert str(cache["source"]) == "mtcnn+fhsdk.align"
    # Aligned faces: the eyes sit at the template's height, so the upper-middle band differs from the border.
    assert cache["images"].std() > 20
    assert set(cache["sources"]) == {"celeba_subset"} and set(cache["framings"]) == {"in the wild"}
    assert set(cache["skipped_reasons"]) <= {"no face detected"}


def test_cache_of_both_celeba_folders_resumes(celeba_dir, celeba_extra_dir, tmp_path, monkeypatch):
    pytest.importorskip("fhsdk.detect.mtcnn")
    import train.data as data

    calls = []
    real = data._detect_and_align

    def interrupted(rows, *args):
        calls.append(len(rows))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the build stops during its third shard
        return real(rows, *args)

    path = tmp_path / "both.npz"
    monkeypatch.setattr(data, "_detect_and_align", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.build_cache([celeba_dir, celeba_extra_dir], path, limit=4, shard_size=3, progress=False)
    assert not path.exists() and len(list((tmp_path / "both.npz.parts").glob("0*.npz"))) == 2
    calls.clear()
    data.build_cache([celeba_dir, celeba_extra_dir], path, limit=4, shard_size=3, progress=False)
    assert calls == [2]  # only the unfinished shard (8 rows: 3 + 3 + 2) was redone
    assert not (tmp_path / "both.npz.parts").exists()

    cache = load_cache(path)
    assert len(cache["labels"]) + len(cache["skipped"]) == 8
    assert len(cache["sources"]) == len(cache["framings"]) == len(cache["labels"])
    extra = cache["sources"] == "celeba_extra"
    assert extra.sum() >= 3 and (cache["sources"] == "celeba_subset").sum() >= 3
    assert set(cache["framings"][extra]) <= {"tight crop", "aligned half-size"}
    assert set(cache["framings"][~extra]) == {"in the wild"}
    assert not set(cache["labels"][extra]) & set(cache["labels"][~extra])  # the folders hold different people
    report = {row["source"]: row for row in data.source_report(cache)}
    assert report["celeba_extra"]["faces"] == extra.sum()
    assert sum(report["celeba_extra"]["dropped"].values()) == (cache["skipped_sources"] == "celeba_extra").sum()
    with pytest.raises(ConfigError, match="other settings"):  # a partial build is never mixed with another
        (tmp_path / "other.npz.parts").mkdir()
        (tmp_path / "other.npz.parts" / "settings.json").write_text("{}")
        data.build_cache([celeba_dir], tmp_path / "other.npz", limit=2, progress=False)


def test_tight_crops_are_padded_before_detection():
    from train.data import CANVAS, pad_for_detection

    crop = np.zeros((100, 80, 3), np.uint8)
    crop[:, :40] = 200
    padded = pad_for_detection(crop, "tight crop")
    assert padded.shape[:2] == CANVAS["tight crop"]  # small crops share one canvas (batched detection)
    assert (padded[:, :40] == 200).all() and (padded[:, -40:] == 0).all()  # edges replicated, not mirrored
    large = pad_for_detection(np.zeros((200, 150, 3), np.uint8), "tight crop")
    assert large.shape == (400, 300, 3)  # at least half the side on every side
    assert pad_for_detection(crop, "aligned half-size").shape == (200, 160, 3)
    assert pad_for_detection(crop, "in the wild") is crop
