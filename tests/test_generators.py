"""Hallucination generators and discriminators: shapes, connectivity, ONNX export with a dynamic batch."""

import numpy as np
import pytest
import torch

from fhsdk.models import create_model, list_models
from fhsdk.models.discriminators import VGGDiscriminator
from fhsdk.models.dsnet import SparseBlock, sparse_inputs

# Small widths: the same code as the paper-sized presets, quick on a CPU.
SMALL = {
    "sicnn": dict(num_features=16, growth_rate=8, layers_per_block=2),
    "edsr": dict(num_features=16, num_blocks=2, res_scale=0.1),
    "srgan": dict(num_features=16, num_blocks=2),
    "dsnet": dict(num_features=16, num_blocks=2, layers_per_block=5, growth_rate=8, bottleneck_features=16),
    "rrdb": dict(num_features=16, num_blocks=1, growth_rate=8),
}


def test_registered():
    assert set(SMALL) | {"vgg_discriminator"} <= set(list_models())


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("scale,side", [(4, 32), (2, 12), (8, 16)])
def test_generator_shapes(name, scale, side):
    torch.manual_seed(0)
    model = create_model(name, scale=scale, **SMALL[name]).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, side, side + 4))  # non-square works too
    assert out.shape == (2, 3, side * scale, (side + 4) * scale)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_generator_learns_to_upsample(name):
    """A few Adam steps on one batch lower the L1 error: gradients reach every layer type."""
    torch.manual_seed(0)
    model = create_model(name, scale=2, **SMALL[name])
    hr = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4), size=(16, 16), mode="bilinear")  # smooth, learnable
    lr = torch.nn.functional.interpolate(hr, scale_factor=0.5, mode="bicubic", antialias=True)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):
        loss = (model(lr) - hr).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.7 * losses[0]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_bad_scale_is_rejected():
    with pytest.raises(ValueError, match="scale"):
        create_model("sicnn", scale=3)
    with pytest.raises(ValueError, match="scale"):
        create_model("rrdb", scale=5)


def test_sparse_connectivity():
    # Layer i aggregates i-1, i-2, i-4, ... (0 is the block input).
    assert sparse_inputs(1) == [0]
    assert sparse_inputs(2) == [1, 0]
    assert sparse_inputs(3) == [2, 1]
    assert sparse_inputs(4) == [3, 2, 0]
    assert sparse_inputs(7) == [6, 5, 3]
    assert sparse_inputs(8) == [7, 6, 4, 0]
    block = SparseBlock(in_channels=10, num_layers=4, growth_rate=6)
    in_channels = [layer[0].in_channels for layer in block.layers]
    assert in_channels == [10, 6 + 10, 6 + 6, 6 + 6 + 10]
    assert block.out_inputs == [4, 3, 1] and block.out_channels == 18  # aggregated like a layer 5
    assert block(torch.rand(1, 10, 5, 5)).shape == (1, 18, 5, 5)


def test_sicnn_uses_dense_blocks_and_deconvolution():
    model = create_model("sicnn", scale=8, num_features=16, growth_rate=32, layers_per_block=3)
    deconvs = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(deconvs) == 3 and all(m.stride == (2, 2) for m in deconvs)
    dense = model.stages[0].dense
    assert [layer[0].in_channels for layer in dense.layers] == [16, 48, 80]
    assert all(isinstance(layer[1], torch.nn.PReLU) for layer in dense.layers)


def test_rrdb_residual_scaling():
    model = create_model("rrdb", **SMALL["rrdb"])
    rdb = model.body[0].blocks[0]
    torch.nn.init.zeros_(rdb.convs[-1].weight)
    torch.nn.init.zeros_(rdb.convs[-1].bias)
    x = torch.rand(1, 16, 4, 4)
    assert torch.equal(rdb(x), x)  # a zero dense branch leaves the input untouched
    assert model.body[0].res_scale == 0.2 and rdb.res_scale == 0.2
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_edsr_has_no_batch_norm_and_srgan_has():
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in create_model("edsr", **SMALL["edsr"]).modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in create_model("srgan", **SMALL["srgan"]).modules())


@pytest.mark.parametrize("norm", ["batch", "instance", "layer", "none"])
@pytest.mark.parametrize("head", ["global", "patch"])
def test_discriminator(norm, head):
    d = VGGDiscriminator(num_features=8, num_stages=3, norm=norm, head=head)
    out = d(torch.rand(3, 3, 128, 128))
    assert out.shape == ((3, 1) if head == "global" else (3, 1, 16, 16))
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert has_bn == (norm == "batch")


def test_critic_scores_are_per_sample():
    """Without batch norm, a sample's score does not depend on the rest of the batch (needed by WGAN-GP)."""
    torch.manual_seed(0)
    d = VGGDiscriminator(num_features=8, num_stages=3, norm="layer").train()
    x = torch.rand(4, 3, 64, 64)
    assert torch.allclose(d(x)[:2], d(x[:2]), atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("name", sorted(SMALL))
def test_onnx_export_dynamic_batch(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = create_model(name, scale=4, **SMALL[name]).eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        model,
        (torch.rand(1, 3, 32, 32),),
        str(path),
        input_names=["lr"],
        output_names=["sr"],
        dynamic_axes={"lr": {0: "batch"}, "sr": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = torch.rand(batch, 3, 32, 32)
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(None, {"lr": x.numpy()})
        assert got.shape == (batch, 3, 128, 128)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_edsr_bicubic_skip_starts_at_bicubic_and_learns_a_residual():
    import torch.nn.functional as F

    from fhsdk.models import create_model

    model = create_model("edsr", num_features=8, num_blocks=1, bicubic_skip=True)
    x = torch.rand(2, 3, 8, 8)
    bicubic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(model(x), bicubic)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        (model(x) - torch.zeros_like(bicubic)).abs().mean().backward()
        optimizer.step()
    assert not torch.allclose(model(x), bicubic)
