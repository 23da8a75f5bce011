"""Known values and properties of the training losses and margin heads."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from train.losses import (
    ArcFaceHead,
    ASoftmaxHead,
    CosFaceHead,
    cface_loss,
    cosine_identity_loss,
    discriminator_loss,
    feature_distance_loss,
    generator_adversarial_loss,
    gradient_penalty,
    pair_identity_loss,
    perceptual_loss,
    pixel_loss,
    random_same_identity,
    super_identity_loss,
    topk_same_identity,
)
from train.recognizer import Recognizer, SmallRecognizer, to_recognizer_input


@pytest.fixture
def features():
    torch.manual_seed(0)
    return torch.randn(6, 16), torch.randn(6, 16)


def test_pixel_losses():
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)
    assert pixel_loss(a, b, "l1").item() == pytest.approx(0.5)
    assert pixel_loss(a, b, "l2").item() == pytest.approx(0.25)
    with pytest.raises(ValueError):
        pixel_loss(a, b, "l3")


def test_identity_losses_vanish_on_identical_features(features):
    f, _ = features
    assert super_identity_loss(f, f).item() == pytest.approx(0, abs=1e-6)
    assert cosine_identity_loss(f, f).item() == pytest.approx(0, abs=1e-6)
    assert feature_distance_loss(f, f).item() == 0
    # Scale does not matter to the normalised losses, it does to FH-GAN's raw distance.
    assert super_identity_loss(3 * f, f).item() == pytest.approx(0, abs=1e-6)
    assert feature_distance_loss(3 * f, f).item() == pytest.approx((2 * f).pow(2).sum(1).mean().item(), rel=1e-5)


def test_identity_loss_values(features):
    a, b = features
    cos = F.cosine_similarity(a, b)
    assert cosine_identity_loss(a, b).item() == pytest.approx((1 - cos).mean().item(), rel=1e-5)
    # For unit vectors ||u - v||^2 = 2 - 2 cos: the super-identity loss is twice Lai's loss.
    assert super_identity_loss(a, b).item() == pytest.approx(2 * cosine_identity_loss(a, b).item(), rel=1e-5)
    # Opposite features: the maxima.
    assert super_identity_loss(a, -a).item() == pytest.approx(4.0, rel=1e-5)
    assert cosine_identity_loss(a, -a).item() == pytest.approx(2.0, rel=1e-5)


def test_cface_loss_hinge(features):
    sr, hr = features
    # SR equal to HR: both terms vanish whatever the compare face.
    assert cface_loss(hr, hr, torch.randn(6, 16), 1.0, 1.0).item() == pytest.approx(0, abs=1e-6)
    # Compare face equal to SR: the hinge is zero, only gamma1 * L_SI remains.
    assert cface_loss(sr, hr, sr, 2.0, 5.0).item() == pytest.approx(2 * super_identity_loss(sr, hr).item(), rel=1e-5)
    # Compare face equal to HR: hinge = L_SI(SR, HR) per sample.
    assert cface_loss(sr, hr, hr, 0.0, 3.0).item() == pytest.approx(3 * super_identity_loss(sr, hr).item(), rel=1e-5)


def test_pair_identity_loss():
    e = torch.eye(3)
    labels = torch.tensor([0, 1, 2])
    # Orthogonal identities, SR == HR: positives have cos 1, negatives cos 0 < m.
    assert pair_identity_loss(e, e, labels, labels, margin=0.3).item() == pytest.approx(0, abs=1e-6)
    # All SR collapsed onto one direction: negative pairs with cos 1 pay 1 - m.
    sr = torch.tensor([[1.0, 0, 0]] * 3)
    loss = pair_identity_loss(sr, e, labels, labels, margin=0.3)
    positives = (0 + 1 + 1) / 3  # 1 - cos for (0,0), (1,1), (2,2)
    negatives = (2 * (1 - 0.3)) / 6  # only pairs (1,0) and (2,0) have cos 1
    assert loss.item() == pytest.approx(positives + negatives, rel=1e-5)


def test_topk_same_identity():
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    angle = torch.tensor([0.0, 0.1, 0.5, 1.0, 2.0, 2.05, 3.0])
    emb = torch.stack([angle.cos(), angle.sin()], dim=1)
    top = topk_same_identity(emb, labels, k=3)
    assert top.shape == (7, 3)
    assert top[0].tolist() == [1, 2, 3]  # nearest first
    assert top[3].tolist() == [2, 1, 0]
    assert top[4].tolist() == [5, 5, 5]  # only one other image: repeated
    assert top[6].tolist() == [6, 6, 6]  # alone: itself
    rand = random_same_identity(labels, 3, torch.Generator().manual_seed(0))
    assert rand.shape == (7, 3)
    for i, row in enumerate(rand.tolist()):
        assert all(labels[j] == labels[i] for j in row)
        if i < 4:
            assert i not in row and len(set(row)) == 3


def test_gradient_penalty_of_linear_critic():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 1))
    real, fake = torch.rand(5, 3, 4, 4), torch.rand(5, 3, 4, 4)
    w = critic[1].weight.detach()
    expected = (w.norm() - 1) ** 2  # a linear critic's gradient is w everywhere
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(expected.item(), rel=1e-5)
    with torch.no_grad():
        critic[1].weight.div_(critic[1].weight.norm())
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0, abs=1e-10)


def test_adversarial_losses():
    real, fake = torch.tensor([[2.0], [1.0]]), torch.tensor([[-1.0], [0.0]])
    bce = lambda x, t: F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))  # noqa: E731
    assert discriminator_loss("standard", real, fake).item() == pytest.approx((bce(real, 1) + bce(fake, 0)).item())
    assert generator_adversarial_loss("standard", fake).item() == pytest.approx(bce(fake, 1).item())
    assert discriminator_loss("wgan", real, fake).item() == pytest.approx(-0.5 - 1.5)
    assert generator_adversarial_loss("wgan", fake).item() == pytest.approx(0.5)
    # RaGAN: D(real) - E[D(fake)] = [2.5, 1.5], D(fake) - E[D(real)] = [-2.5, -1.5].
    d = 0.5 * (bce(torch.tensor([2.5, 1.5]), 1) + bce(torch.tensor([-2.5, -1.5]), 0))
    assert discriminator_loss("ragan", real, fake).item() == pytest.approx(d.item(), rel=1e-6)
    g = 0.5 * (bce(torch.tensor([2.5, 1.5]), 0) + bce(torch.tensor([-2.5, -1.5]), 1))
    assert generator_adversarial_loss("ragan", fake, real).item() == pytest.approx(g.item(), rel=1e-6)
    with pytest.raises(ValueError):
        generator_adversarial_loss("ragan", fake)


def test_arcface_and_cosface_logits():
    torch.manual_seed(0)
    x, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    arc = ArcFaceHead(8, 5, s=64.0, m=0.0)
    cos = F.normalize(x) @ F.normalize(arc.weight).t()
    assert torch.allclose(arc(x, labels), 64 * cos, atol=1e-4)
    arc.m = 0.5
    logits = arc(x, labels)
    theta = torch.acos(cos[torch.arange(4), labels])
    expected = torch.where(
        theta + 0.5 < math.pi, torch.cos(theta + 0.5), torch.cos(theta) - math.sin(math.pi - 0.5) * 0.5
    )
    assert torch.allclose(logits[torch.arange(4), labels], 64 * expected, atol=1e-3)
    off = torch.ones_like(logits, dtype=torch.bool)
    off[torch.arange(4), labels] = False
    assert torch.allclose(logits[off], 64 * cos[off], atol=1e-4)
    cosface = CosFaceHead(8, 5, s=30.0, m=0.35)
    cosface.weight.data.copy_(arc.weight.data)
    assert torch.allclose(cosface(x, labels), 30 * (cos - 0.35 * F.one_hot(labels, 5)), atol=1e-4)


def test_asoftmax_logits():
    torch.manual_seed(0)
    x, labels = torch.randn(6, 8), torch.randint(0, 5, (6,))
    head = ASoftmaxHead(8, 5, m=4, lambda_min=0.0, base=0.0).eval()  # lambda = 0: the pure margin
    cos = F.normalize(x) @ F.normalize(head.weight).t()
    theta = torch.acos(cos[torch.arange(6), labels])
    k = torch.floor(4 * theta / math.pi)
    psi = (-1) ** k * torch.cos(4 * theta) - 2 * k
    logits = head(x, labels)
    assert torch.allclose(logits[torch.arange(6), labels], x.norm(dim=1) * psi, atol=1e-4)
    # psi is monotonically decreasing in theta on [0, pi]: a real margin.
    t = torch.linspace(0, math.pi, 200)
    kk = torch.floor(4 * t / math.pi).clamp(max=3)
    assert (torch.diff((-1) ** kk * torch.cos(4 * t) - 2 * kk) <= 1e-6).all()
    # Annealing: a huge lambda gives back plain ||x|| cos; the counter advances in training mode.
    soft = ASoftmaxHead(8, 5, base=1e9, lambda_min=5.0).train()
    soft.weight.data.copy_(head.weight.data)
    assert torch.allclose(soft(x, labels), x.norm(dim=1, keepdim=True) * cos, atol=1e-3)
    assert int(soft.iteration) == 1


def test_margin_heads_learn():
    torch.manual_seed(0)
    centres = torch.randn(4, 8) * 3
    labels = torch.arange(4).repeat(8)
    x = centres[labels] + 0.3 * torch.randn(32, 8)
    for head in (ArcFaceHead(8, 4, s=16, m=0.5), CosFaceHead(8, 4, s=16), ASoftmaxHead(8, 4)):
        opt = torch.optim.SGD(head.parameters(), lr=0.1)
        first = F.cross_entropy(head(x, labels), labels).item()
        for _ in range(50):
            loss = F.cross_entropy(head(x, labels), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < first
        assert (head.cosine(x).argmax(1) == labels).float().mean() == 1.0


def test_to_recognizer_input_is_bilinear_then_normalise():
    sr = torch.rand(2, 3, 128, 128)
    out = to_recognizer_input(sr, 150, lambda x: (x - 0.5) * 2)
    ref = (F.interpolate(sr, size=(150, 150), mode="bilinear", align_corners=False) - 0.5) * 2
    assert out.shape == (2, 3, 150, 150) and torch.equal(out, ref)


def test_identity_losses_through_a_real_recognizer():
    """The whole path: SR -> resize + normalise -> conv net -> loss; gradients reach the SR image."""
    torch.manual_seed(0)
    recognizer = Recognizer(
        SmallRecognizer(), 48, lambda x: (x - 0.5) / 0.5, feature_layers=["stages.2", "stages.5"]
    ).eval()
    hr = torch.rand(3, 3, 128, 128)
    sr = hr.clone().requires_grad_(True)
    f_hr = recognizer(hr)
    assert super_identity_loss(recognizer(sr), f_hr).item() == pytest.approx(0, abs=1e-6)
    noisy = (hr + 0.2 * torch.randn_like(hr)).requires_grad_(True)
    emb, maps = recognizer.forward_with_features(noisy)
    _, hr_maps = recognizer.forward_with_features(hr)
    loss = cosine_identity_loss(emb, f_hr) + perceptual_loss(maps, hr_maps)
    assert loss.item() > 0
    loss.backward()
    assert noisy.grad is not None and noisy.grad.abs().sum() > 0
    assert [m.shape[1] for m in maps] == [16, 32]


def test_relational_contrastive_loss_known_values():
    from train.losses import relational_contrastive_loss

    teacher = torch.eye(4)  # four people, orthogonal HR features
    labels = torch.arange(4)
    # Student features on their own teacher features: softmax of (s, 0, 0, 0) on the diagonal.
    expected = -torch.log(torch.exp(torch.tensor(10.0)) / (torch.exp(torch.tensor(10.0)) + 3))
    assert relational_contrastive_loss(teacher * 3, teacher, labels, scale=10.0) == pytest.approx(
        float(expected), abs=1e-6
    )
    # A student that maps everyone to the same point cannot tell people apart: log(4).
    collapsed = torch.ones(4, 4)
    assert relational_contrastive_loss(collapsed, teacher, labels, scale=10.0) == pytest.approx(math.log(4), rel=1e-5)
    # Two images of the same person are both positives: the mass on either counts.
    labels = torch.tensor([0, 0, 1, 2])
    assert relational_contrastive_loss(collapsed, teacher, labels, scale=10.0) == pytest.approx(
        (2 * -math.log(2 / 4) + 2 * -math.log(1 / 4)) / 4, rel=1e-5
    )
