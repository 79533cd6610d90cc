"""Tests for ganlab.tricks: closed forms (minibatch discrimination, feature matching, label targets, noise schedule,
truncated normal), packing shapes and means, unrolling against a hand-written unroll, VBN's batch independence,
DiffAugment's geometry, the registry's parsing and errors, composition of every trick with every score loss in
the trainer, and resume equality for the stateful tricks."""
import copy, csv, json, math
from pathlib import Path
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganlab import losses as L, models
from ganlab.data import ring, ImageTensors
from ganlab.regularizers import Penalized, HistoricalAveraging, R1, r1_penalty
from ganlab.train import Setup, TrainConfig, Trainer, main, EMA
from ganlab.recipes import tricks, apply, parse_spec
from ganlab.games import AdversarialGame
from ganlab.tricks import (DiscriminatorWrapper, MinibatchDiscrimination, MinibatchDiscriminator,
                           FeatureMatching, TargetLabels, VirtualBatchNorm, WithReferenceBatch, use_virtual_batch_norm,
                           noise_schedule, InstanceNoise, InstanceNoiseSchedule, FunctionalDiscriminator, Unrolled, Packed,
                           truncated_normal_latents, diff_augment, DiffAugment, augment_translation, augment_cutout,
                           augment_brightness, augment_saturation, augment_contrast)

SCORE_LOSSES = ['gan', 'nsgan', 'lsgan', 'wgan', 'wgan_gp', 'dragan', 'hinge', 'ragan']
TARGET_LOSSES = {'gan', 'nsgan', 'lsgan', 'dragan'}


# ---------------------------------------------------------------- minibatch discrimination
@pytest.mark.parametrize('n', [1, 2, 9])
def test_minibatch_discrimination_identical_samples(n):
    layer = MinibatchDiscrimination(A=6, B=4, C=3)
    same = torch.randn(1, 6).expand(n, 6)
    assert torch.allclose(layer.similarity(same), torch.full((n, 4), float(n)))
    assert torch.allclose(MinibatchDiscrimination(6, 4, 3, exclude_self=True).similarity(same), torch.full((n, 4), n - 1.))


def test_minibatch_discrimination_distinct_samples_closed_form():
    layer = MinibatchDiscrimination(A=2, B=2, C=2)
    T = torch.zeros(2, 2, 2)
    T[0, 0, 0] = 1.; T[1, 0, 1] = 1.                      # kernel 0: M = f (both features)
    T[0, 1, 0] = 3.                                          # kernel 1: M = (3 f₁, 0)
    with torch.no_grad(): layer.T.copy_(T)
    f = torch.tensor([[0., 0.], [1., 2.], [-1., 0.5]])
    d0 = torch.cdist(f, f, p=1)                              # kernel 0 distances
    d1 = 3 * torch.cdist(f[:, :1], f[:, :1], p=1)
    expected = torch.stack([torch.exp(-d0).sum(1), torch.exp(-d1).sum(1)], 1)
    assert torch.allclose(layer.similarity(f), expected)
    assert torch.allclose(expected[:, 0], torch.tensor([1 + math.exp(-3) + math.exp(-1.5), math.exp(-3) + 1 + math.exp(-3.5),
                                                         math.exp(-1.5) + math.exp(-3.5) + 1]))
    far = torch.tensor([[0., 0.], [100., 0.], [-100., 0.]])
    assert torch.allclose(layer.similarity(far), torch.ones(3, 2))        # alone: only the j = i term
    assert layer(f).shape == (3, 4) and torch.equal(layer(f)[:, :2], f)


def test_minibatch_discriminator_wraps_a_plain_discriminator():
    D = MinibatchDiscriminator(models.MLPDiscriminator(2, (16, 8)), B=5, C=3)
    x = torch.randn(10, 2)
    assert D(x).shape == (10,) and D.features(x).shape == (10, 13) and D.mbd.A == 8
    assert 'inner.head.weight' not in D.state_dict() and 'mbd.T' in D.state_dict()
    assert sum(p.numel() for p in D.parameters()) == 2 * 16 + 16 + 16 * 8 + 8 + 8 * 5 * 3 + 13 + 1
    with pytest.raises(ValueError, match='^D: expected a discriminator with features'):
        MinibatchDiscriminator(nn.Linear(2, 1))
    with pytest.raises(ValueError, match='^f: expected features of shape \\(N, 8\\)'):
        D.mbd.similarity(torch.zeros(3, 7))
    for bad in (dict(B=0), dict(C=-1), dict(init_std=0.)):
        with pytest.raises(ValueError): MinibatchDiscriminator(models.MLPDiscriminator(), **bad)


# ---------------------------------------------------------------- feature matching
def test_feature_matching_zero_for_identical_batches_and_hand_value():
    torch.manual_seed(0)
    D = models.MLPDiscriminator(2, (8, 8))
    real = torch.randn(20, 2)
    fm = FeatureMatching(L.NSGAN())
    fm.d_loss(D, real, torch.randn(20, 2))
    assert fm.g_loss(D, real.clone()).item() == 0.
    assert fm.g_loss(D, real[torch.randperm(20)]).item() < 1e-12              # a permutation has the same mean
    fake = torch.randn(20, 2)
    assert torch.isclose(fm.g_loss(D, fake), (D.features(real).mean(0) - D.features(fake).mean(0)).pow(2).sum())
    mixed = FeatureMatching(L.NSGAN(), adv_weight=0.5)
    mixed.d_loss(D, real, fake)
    assert torch.isclose(mixed.g_loss(D, fake), fm.g_loss(D, fake) + 0.5 * L.nsgan.g_loss(D, fake))


def test_feature_matching_needs_a_real_batch_and_features():
    with pytest.raises(ValueError, match='^real: expected a real batch: call d_loss before g_loss'):
        FeatureMatching(L.nsgan).g_loss(models.MLPDiscriminator(), torch.zeros(2, 2))
    fm = FeatureMatching(L.NSGAN())
    D = nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    fm.d_loss(D, torch.zeros(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match='^D: expected a discriminator with a features'):
        fm.g_loss(D, torch.zeros(2, 2))


# ---------------------------------------------------------------- label targets
def test_label_targets():
    s = torch.zeros(4000)
    smooth = TargetLabels(L.NSGAN(), real=0.9)
    assert torch.equal(smooth.targets(s, True), torch.full((4000,), 0.9)) and torch.equal(smooth.targets(s, False), torch.zeros(4000))
    swapped = TargetLabels(L.NSGAN(), real=0.8, fake=0.1, flip=1.)
    assert torch.allclose(swapped.targets(s, True), torch.full((4000,), 0.1)) and torch.allclose(swapped.targets(s, False), torch.full((4000,), 0.8))
    torch.manual_seed(0)
    t = TargetLabels(L.NSGAN(), noise=0.3, flip=0.2).targets(s, False)
    assert bool(((t <= 0.3) | (t >= 0.7)).all()) and abs((t >= 0.7).float().mean().item() - 0.2) < 0.03
    assert t.min() == 0. and t.max() == 1.                                     # clipped


def test_label_smoothing_loss_by_hand_and_defaults_equal_the_base():
    torch.manual_seed(0)
    D = models.MLPDiscriminator(2, (8,)); real, fake = torch.randn(16, 2), torch.randn(16, 2)
    for name in ('nsgan', 'gan', 'dragan', 'lsgan'):
        base = copy.deepcopy(L.get(name))
        torch.manual_seed(1); a = TargetLabels(base).d_loss(D, real, fake)
        torch.manual_seed(1); b = base.d_loss(D, real, fake)
        assert torch.isclose(a, b), name
    r, f = D(real), D(fake)
    smooth = TargetLabels(L.NSGAN(), real=0.9)
    assert torch.isclose(smooth.d_loss(D, real, fake), -(0.9 * F.logsigmoid(r) + 0.1 * F.logsigmoid(-r)).mean() - F.logsigmoid(-f).mean())
    assert torch.isclose(TargetLabels(L.LSGAN(), real=0.9).d_loss(D, real, fake), (r - 0.9).pow(2).mean() + f.pow(2).mean())
    assert set(smooth.stats) == {'d_real', 'd_fake'}
    assert torch.equal(smooth.g_loss(D, fake), L.nsgan.g_loss(D, fake))


def test_label_targets_refuse_losses_without_targets_and_bad_values():
    for name in ('wgan', 'wgan_gp', 'hinge', 'ragan', 'acgan', 'ebgan'):
        with pytest.raises(ValueError, match='^base: expected a loss with real/fake targets'):
            TargetLabels(L.get(name))
    for kw, name in ((dict(real=1.1), 'real'), (dict(fake=-0.1), 'fake'), (dict(noise=0.6), 'noise'), (dict(flip=2.), 'flip')):
        with pytest.raises(ValueError, match=f'^{name}: expected'): TargetLabels(L.nsgan, **kw)


# ---------------------------------------------------------------- instance noise
def test_noise_schedule_values():
    assert [noise_schedule(t, 1., 4) for t in range(6)] == [1., 0.75, 0.5, 0.25, 0., 0.]
    assert [round(noise_schedule(t, 2., 2, 'exponential'), 12) for t in range(3)] == [2., 0.2, 0.]
    for bad in (dict(kind='cosine'), dict(sigma=-1.), dict(steps=0)):
        args = dict(step=0, sigma=1., steps=10, kind='linear'); args.update(bad)
        with pytest.raises(ValueError): noise_schedule(**args)


def test_instance_noise_wrapper_and_callback():
    D = InstanceNoise(nn.Identity(), sigma=0.3)
    x = torch.zeros(50000, 2)
    assert abs(D(x).std().item() - 0.3) < 0.005 and torch.equal(D.eval()(x), x)
    D.train()
    cb = InstanceNoiseSchedule(D, 0.3, 100)
    tr = type('T', (), {'step': 25})()
    cb.before_fit(tr); assert math.isclose(D.sigma.item(), 0.225, rel_tol=1e-6)
    tr.step = 100; cb.after_step(tr)
    assert D.sigma.item() == 0. and torch.equal(D(x), x) and cb.state_dict() == {'sigma': 0.}
    cb.load_state_dict({'sigma': 0.1}, tr); assert math.isclose(D.sigma.item(), 0.1, rel_tol=1e-6)
    assert 'sigma' in D.state_dict()
    with pytest.raises(ValueError, match='^module: expected an InstanceNoise'): InstanceNoiseSchedule(nn.Identity(), 0.1, 10)
    with pytest.raises(ValueError, match='^steps: expected a positive number'): InstanceNoiseSchedule(D, 0.1, 0)


def test_instance_noise_keeps_features_and_conditioning():
    class CondD(nn.Module):
        def forward(self, x, y): return x.sum(1) + y
        def features(self, x): return 2 * x
    D = InstanceNoise(CondD(), sigma=0.)
    x, y = torch.randn(3, 2), torch.ones(3)
    assert torch.equal(D(x, y), x.sum(1) + 1) and torch.equal(D.features(x), 2 * x)


# ---------------------------------------------------------------- PacGAN
def test_packing_shapes_and_order():
    x = torch.arange(24.).reshape(12, 2)
    P = Packed(nn.Identity(), m=3)
    assert P.transform(x).shape == (4, 6) and torch.equal(P.transform(x)[1], torch.arange(6., 12.))
    assert Packed(nn.Identity(), 4).transform(torch.zeros(8, 3, 5, 5)).shape == (2, 12, 5, 5)
    inner = models.MLPDiscriminator(6, (8,))
    D = Packed(inner, 3)
    scores = D(x)
    assert scores.shape == (12,) and torch.equal(scores, inner(x.reshape(4, 6)).repeat_interleave(3))
    assert D.features(x).shape == (12, 8)
    with pytest.raises(ValueError, match='^x: expected a batch whose size is a multiple of the packing degree m = 3, got .10 samples'):
        D(torch.zeros(10, 2))
    with pytest.raises(ValueError, match='^m: expected a packing degree m >= 1'):
        Packed(inner, 0)


@pytest.mark.parametrize('name', SCORE_LOSSES)
def test_packing_leaves_every_loss_a_mean_over_packs(name):
    torch.manual_seed(0)
    inner = models.MLPDiscriminator(4, (8,))
    D, real, fake = Packed(inner, 2), torch.randn(10, 2), torch.randn(10, 2)
    loss = copy.deepcopy(L.get(name))
    if name in ('wgan_gp', 'dragan'):
        loss = loss.fresh(); loss.lam = 0.                                     # compare the loss terms themselves
    rp, fp = inner(real.reshape(5, 4)), inner(fake.reshape(5, 4))
    assert torch.isclose(loss.d_loss(D, real, fake), loss.d_from_scores(rp, fp))


# ---------------------------------------------------------------- unrolling
def hand_unrolled_g_loss(D, real, fake, k, lr, detach=False):
    w, b = D[0].weight.detach().clone().requires_grad_(), D[0].bias.detach().clone().requires_grad_()
    f_in = fake.detach() if detach else fake
    for _ in range(k):
        loss = F.softplus(-(real @ w.T + b)).mean() + F.softplus(f_in @ w.T + b).mean()
        gw, gb = torch.autograd.grad(loss, (w, b), create_graph=True)
        w, b = w - lr * gw, b - lr * gb
    return F.softplus(-(fake @ w.T + b)).mean()


def test_unrolled_matches_a_hand_unroll_and_leaves_D_alone():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
    real, fake0 = torch.randn(8, 3), torch.randn(8, 3)
    u = Unrolled(L.NSGAN(), k=3, lr=0.3, optimizer='sgd')
    u.d_loss(D, real, fake0)
    before = copy.deepcopy(D.state_dict())
    fake = fake0.clone().requires_grad_(); ours = u.g_loss(D, fake); g1, = torch.autograd.grad(ours, fake)
    fake = fake0.clone().requires_grad_(); hand = hand_unrolled_g_loss(D, real, fake, 3, 0.3); g2, = torch.autograd.grad(hand, fake)
    fake = fake0.clone().requires_grad_(); g3, = torch.autograd.grad(hand_unrolled_g_loss(D, real, fake, 3, 0.3, detach=True), fake)
    assert torch.isclose(ours, hand) and torch.allclose(g1, g2, atol=1e-6) and not torch.allclose(g1, g3, atol=1e-4)
    assert all(torch.equal(before[k], v) for k, v in D.state_dict().items())
    u0 = Unrolled(L.NSGAN(), k=0); u0.d_loss(D, real, fake0)
    assert torch.equal(u0.g_loss(D, fake0), L.nsgan.g_loss(D, fake0))


def test_unrolled_adam_moments_follow_the_recorded_gradients_and_round_trip():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    u = Unrolled(L.NSGAN(), k=1, lr=0.1, betas=(0.8, 0.9))
    grads = []
    for _ in range(3):
        D.zero_grad(); u.d_loss(D, real, fake).backward(); grads.append(D[0].weight.grad.clone()); u.after_d_update(D)
        with torch.no_grad(): D[0].weight.add_(0.1)
    m = sum(0.8 ** (2 - i) * 0.2 * g for i, g in enumerate(grads))
    v = sum(0.9 ** (2 - i) * 0.1 * g ** 2 for i, g in enumerate(grads))
    assert u.count == 3 and torch.allclose(u.m['0.weight'], m) and torch.allclose(u.v['0.weight'], v)
    # one unrolled Adam step continues these moments: the 4th step of Adam
    g, = torch.autograd.grad(L.nsgan.d_loss(D, real, fake), D[0].weight)
    m4, v4 = 0.8 * m + 0.2 * g, 0.9 * v + 0.1 * g ** 2
    step = 0.1 * (m4 / (1 - 0.8 ** 4)) / ((v4 / (1 - 0.9 ** 4)).sqrt() + 1e-8)
    assert torch.allclose(u.unroll(D, real, fake).tensors['0.weight'], D[0].weight - step, atol=1e-6)
    other = Unrolled(L.NSGAN(), k=1, lr=0.1, betas=(0.8, 0.9)); other.load_state_dict(u.state_dict())
    assert other.count == 3 and torch.equal(other.m['0.weight'], u.m['0.weight']) and torch.equal(other.v['0.bias'], u.v['0.bias'])
    with pytest.raises(ValueError, match="^state: expected only 'base', or 'base', 'm', 'v' and 'count'"):
        other.load_state_dict({'base': {}, 'v': {}})


def test_unrolled_keeps_buffers_and_works_with_penalised_and_wrapped_bases():
    from ganlab.regularizers import apply_spectral_norm
    torch.manual_seed(0)
    D = apply_spectral_norm(models.MLPDiscriminator(2, (8, 8)))
    real, fake = torch.randn(16, 2), torch.randn(16, 2, requires_grad=True)
    for base in (L.WGANGP(), Penalized(L.NSGAN(), R1(1.)), TargetLabels(L.NSGAN(), real=0.9), FeatureMatching(L.NSGAN())):
        u = Unrolled(base, k=2, lr=0.05)
        u.d_loss(D, real, fake.detach())
        before = copy.deepcopy(D.state_dict())
        g, = torch.autograd.grad(u.g_loss(D, fake), fake)
        assert torch.isfinite(g).all() and g.abs().sum() > 0, base
        assert all(torch.equal(before[k], v) for k, v in D.state_dict().items()), base


def test_functional_discriminator_matches_the_module():
    D = models.MLPDiscriminator(2, (4,))
    x = torch.randn(5, 2)
    Df = FunctionalDiscriminator(D, dict(D.named_parameters()))
    assert torch.equal(Df(x), D(x)) and torch.equal(Df.features(x), D.features(x))


def test_unrolled_bad_arguments():
    with pytest.raises(ValueError, match='^k: expected a number of unrolled steps >= 0'): Unrolled(L.nsgan, k=-1)
    with pytest.raises(ValueError, match='^lr: expected a number > 0'): Unrolled(L.nsgan, lr=0.)
    with pytest.raises(ValueError, match='^betas: expected two numbers in \\[0, 1\\)'): Unrolled(L.nsgan, betas=(0.5, 1.))
    with pytest.raises(ValueError, match="^optimizer: expected 'adam' or 'sgd'"): Unrolled(L.nsgan, optimizer='rmsprop')
    with pytest.raises(ValueError, match='^real: expected a real batch'):
        Unrolled(L.NSGAN()).g_loss(models.MLPDiscriminator(), torch.zeros(4, 2))


# ---------------------------------------------------------------- virtual batch norm
def test_virtual_batch_norm_formula_and_batch_independence():
    torch.manual_seed(0)
    vbn = VirtualBatchNorm(3); vbn.n_ref = 5
    ref, xs = torch.randn(5, 3), torch.randn(4, 3)
    out = vbn(torch.cat([ref, xs]))
    mu = (xs + ref.sum(0)) / 6; var = (xs ** 2 + (ref ** 2).sum(0)) / 6 - mu ** 2
    assert torch.allclose(out[5:], (xs - mu) / torch.sqrt(var + 1e-5), atol=1e-6)
    assert torch.allclose(out[:5], (ref - ref.mean(0)) / torch.sqrt(ref.var(0, correction=0) + 1e-5), atol=1e-6)
    img_vbn = VirtualBatchNorm(2); img_vbn.n_ref = 3
    imgs = torch.randn(3 + 4, 2, 5, 5)
    net_out = img_vbn(imgs)
    assert torch.allclose(net_out[3:4], img_vbn(torch.cat([imgs[:3], imgs[3:4]]))[3:], atol=1e-6)
    G = use_virtual_batch_norm(models.DCGANGenerator(8, 1, 28, 4), torch.randn(16, 8))
    z = torch.randn(5, 8)
    assert torch.allclose(G(z)[2:3], G(z[2:3]), atol=1e-5) and torch.allclose(G.eval()(z), G.train()(z))


def test_virtual_batch_norm_errors():
    with pytest.raises(ValueError, match='^n_ref: expected a reference batch size'):
        VirtualBatchNorm(3)(torch.zeros(4, 3))
    with pytest.raises(ValueError, match='^net: expected a network with BatchNorm layers'):
        use_virtual_batch_norm(models.MLPGenerator(), torch.zeros(4, 2))
    with pytest.raises(ValueError, match='^net: expected a network with VirtualBatchNorm layers'):
        WithReferenceBatch(nn.Linear(2, 2), torch.zeros(4, 2))


# ---------------------------------------------------------------- DiffAugment
def test_translation_moves_a_pixel_by_the_drawn_shift():
    img = torch.zeros(300, 2, 16, 16); img[:, :, 8, 8] = 1.
    torch.manual_seed(7); out = augment_translation(img)
    torch.manual_seed(7); tx, ty = torch.randint(-2, 3, (300, 1, 1)), torch.randint(-2, 3, (300, 1, 1))
    pos = out[:, 0].flatten(1).argmax(1)
    assert torch.equal(pos // 16, 8 - tx.flatten()) and torch.equal(pos % 16, 8 - ty.flatten())
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out.sum((2, 3)), torch.ones(300, 2))


def test_cutout_colour_and_gradients():
    holes = (augment_cutout(torch.ones(400, 3, 10, 10)) == 0).all(1).sum((1, 2))
    assert holes.max() == 25 and holes.min() >= 9
    x = torch.rand(8, 3, 6, 6)
    assert torch.allclose((augment_brightness(x) - x).flatten(1).std(1), torch.zeros(8), atol=1e-6)
    assert torch.allclose(augment_saturation(x).mean(1), x.mean(1), atol=1e-6)
    assert torch.allclose(augment_contrast(x).mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-6)
    x.requires_grad_()
    g, = torch.autograd.grad(diff_augment(x, 'color,translation,cutout').sum(), x)
    assert g.abs().sum() > 0


def test_diffaugment_wrapper_and_errors():
    D = DiffAugment(nn.Flatten(), 'translation+cutout')
    x = torch.rand(4, 1, 8, 8) + 1
    assert not torch.equal(D(x), x.flatten(1)) and torch.equal(D.eval()(x), x.flatten(1))
    assert D.policy == ('translation', 'cutout')
    with pytest.raises(ValueError, match='^policy: expected names from'): DiffAugment(nn.Identity(), 'colour')
    with pytest.raises(ValueError, match='^x: expected images of shape \\(N, C, H, W\\)'): diff_augment(torch.zeros(3, 2))


# ---------------------------------------------------------------- truncation
def test_truncated_normal_latents():
    z = truncated_normal_latents(50_000, 4, threshold=0.5, generator=torch.Generator().manual_seed(0))
    tau = 0.5
    phi, Phi = math.exp(-tau ** 2 / 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(tau / math.sqrt(2)))
    assert z.abs().max() <= 0.5 and abs(z.var().item() - (1 - 2 * tau * phi / (2 * Phi - 1))) < 0.003
    a = truncated_normal_latents(6, 2, psi=0.7, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, 0.7 * torch.randn(6, 2, generator=torch.Generator().manual_seed(3)))
    assert truncated_normal_latents(3, 2, psi=0.).abs().max() == 0.
    for kw in (dict(), dict(psi=0.5, threshold=1.), dict(psi=-0.1), dict(threshold=0.)):
        with pytest.raises(ValueError): truncated_normal_latents(3, 2, **kw)


# ---------------------------------------------------------------- registry and apply
def setup_for(loss='nsgan', arch='mlp', data=None, **config):
    cfg = TrainConfig(loss=loss, arch=arch, width=8 if arch == 'dcgan' else 16, batch_size=8, **config).resolved()
    data = data if data is not None else ring()
    shape = (2,) if arch == 'mlp' else data.shape
    G, D = models.build(arch, shape, latent_dim=cfg.latent_dim, width=cfg.width)
    return Setup(G, D, copy.deepcopy(L.get(loss)), data, [], cfg)


def test_parse_spec():
    assert parse_spec('r1') == ('r1', {})
    assert parse_spec(' unrolled : k=3, lr = 1e-2 ') == ('unrolled', {'k': 3, 'lr': 0.01})
    assert parse_spec("diffaug:policy=color,translation") == ('diffaug', {'policy': 'color,translation'})
    assert parse_spec("diffaug:policy='color,cutout',x=[1, 2]") == ('diffaug', {'policy': 'color,cutout', 'x': [1, 2]})
    assert parse_spec('gradient_penalty:one_sided=True') == ('gradient_penalty', {'one_sided': True})
    for bad in ('', 'r1:gamma', 'r1:gamma=1,gamma=2', 'r1:1=2'):
        with pytest.raises(ValueError, match='^trick: expected'): parse_spec(bad)


def test_apply_names_its_errors():
    with pytest.raises(KeyError, match="unknown trick 'nope'; valid names: .*unrolled"):
        apply('nope', setup_for())
    with pytest.raises(ValueError, match="^pack: mm: expected one of the arguments m, got 'mm'"):
        apply('pack:mm=2', setup_for())
    with pytest.raises(ValueError, match='^m: expected a packing degree that divides the batch size 8, got 3'):
        apply('pack:m=3', setup_for())
    with pytest.raises(ValueError, match='^lam: expected a number >= 0'):
        apply('gradient_penalty:lam=-10', setup_for())
    with pytest.raises(ValueError, match="^player: expected 'd', 'g' or 'both'"):
        apply('historical_averaging:player="x"', setup_for())
    with pytest.raises(ValueError, match='^D: expected a plain MLPDiscriminator or DCGANDiscriminator'):
        apply('dropout', apply('spectral_norm', apply('instance_noise', setup_for())))
    with pytest.raises(ValueError, match='^instance_noise: expected the trick once'):
        apply('instance_noise', apply('instance_noise', setup_for()))
    with pytest.raises(ValueError, match='^ema: expected either --ema or the ema trick'):
        apply('ema', setup_for(ema=0.99))


def test_penalty_tricks_share_one_wrapper_and_bind_the_generator():
    s = setup_for()
    for spec in ('r1:gamma=2', 'orthogonal:beta=1e-3,player="both"', 'historical_averaging:player="g"', 'r2'):
        s = apply(spec, s)
    assert isinstance(s.loss, Penalized) and isinstance(s.loss.base, L.NSGAN)
    assert [type(t).__name__ for t in s.loss.d_terms] == ['R1', 'OrthogonalPenalty', 'R2']
    assert [t.module for t in s.loss.g_terms] == [s.G, s.G]


def test_tricks_are_deterministic_given_the_config():
    a = apply('virtual_batch_norm:n_ref=8', setup_for(arch='dcgan', data=fake_images()))
    b = apply('virtual_batch_norm:n_ref=8', setup_for(arch='dcgan', data=fake_images()))
    assert torch.equal(a.G.reference, b.G.reference)
    c = apply('virtual_batch_norm:n_ref=8', setup_for(arch='dcgan', data=fake_images(), seed=1))
    assert not torch.equal(a.G.reference, c.G.reference)


def fake_images(n=64):
    g = torch.Generator().manual_seed(0)
    return ImageTensors(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g), torch.zeros(n, dtype=torch.long))


def run_steps(s, steps=2):
    cfg = s.config
    opt_g = torch.optim.Adam(s.G.parameters(), 1e-3); opt_d = torch.optim.Adam(s.D.parameters(), 1e-3)
    game = AdversarialGame(s.G, s.D, s.loss, opt_g, opt_d, cfg.n_critic, s.conditioning)
    tr = Trainer(game, s.data, cfg.batch_size, 'cpu', cfg.seed, s.callbacks)
    tr.fit(steps)
    d_loss, g_loss = tr.logs['discriminator']['d_loss'], tr.logs['generator']['g_loss']
    assert tr.failure is None and torch.isfinite(d_loss) and torch.isfinite(g_loss)
    return tr


MLP_TRICKS = ['gradient_penalty', 'gradient_penalty:one_sided=True', 'dragan', 'r1', 'r2', 'weight_clipping', 'spectral_norm',
              'orthogonal:player="both"', 'historical_averaging', 'feature_matching', 'minibatch_discrimination', 'label_smoothing',
              'noisy_labels', 'instance_noise:steps=2', 'pack:m=4', 'unrolled:k=2', 'dropout', 'ema:beta=0.9']


def test_every_trick_is_registered_and_tested():
    assert set(tricks.names) == {parse_spec(s)[0] for s in MLP_TRICKS} | {'diffaug', 'virtual_batch_norm', 'g_without_batch_norm'}  # image-only: tested with the DCGAN (test_recipes for the last)


@pytest.mark.parametrize('loss', SCORE_LOSSES)
def test_every_trick_composes_with_every_score_loss(loss):
    for spec in MLP_TRICKS:
        s = setup_for(loss, n_critic=1)
        if parse_spec(spec)[0] in ('label_smoothing', 'noisy_labels') and loss not in TARGET_LOSSES:
            with pytest.raises(ValueError, match='^base: expected a loss with real/fake targets'): apply(spec, s)
            continue
        run_steps(apply(spec, s))


def test_tricks_stack_on_one_run():
    s = setup_for('nsgan')
    for spec in ('pack:m=2', 'instance_noise:sigma=0.2,steps=5', 'spectral_norm', 'r1', 'historical_averaging',
                 'feature_matching', 'label_smoothing', 'unrolled:k=1'):
        s = apply(spec, s)
    tr = run_steps(s, 3)
    assert {'feature_matching', 'r1', 'hist_avg', 'g_hist_avg'} <= set(tr.logs['discriminator']) | set(tr.logs['generator'])
    s = setup_for('hinge')
    for spec in ('dropout:p=0.2', 'minibatch_discrimination:B=3,C=2', 'r2'):
        s = apply(spec, s)
    run_steps(s, 2)


def test_image_tricks_on_dcgan():
    s = setup_for('nsgan', arch='dcgan', data=fake_images())
    for spec in ('dropout:p=0.1', 'pack:m=2', 'diffaug', 'spectral_norm', 'virtual_batch_norm:n_ref=4', 'r1'):
        s = apply(spec, s)
    tr = run_steps(s, 2)
    D = tr.game.D
    assert isinstance(D, DiffAugment) and isinstance(D.inner, Packed) and D.inner.inner.in_shape == (2, 28, 28)
    s = setup_for('hinge', arch='dcgan', data=fake_images())
    run_steps(apply('minibatch_discrimination:init_std=0.05', s), 2)


# ---------------------------------------------------------------- resume equality for the stateful tricks
SMALL = ['--width', '16', '--batch-size', '32', '--log-every', '10', '--checkpoint-every', '50', '--quiet', '--no-diagnostics']


def checkpoint(run): return torch.load(Path(run)/'checkpoint.pt', weights_only=False)


def history(run):
    with open(Path(run)/'history.csv', newline='') as f:
        return [{k: v for k, v in r.items() if k != 'seconds'} for r in csv.DictReader(f)]


def same(a, b):
    if torch.is_tensor(a): return torch.allclose(a.float(), b.float(), atol=1e-6, rtol=0)
    if isinstance(a, dict): return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize('specs', [
    ['historical_averaging:weight=0.01', 'instance_noise:sigma=0.3,steps=80'],
    ['minibatch_discrimination:B=3,C=2', 'label_smoothing', 'feature_matching'],
    ['dropout:p=0.2', 'pack:m=2', 'spectral_norm', 'unrolled:k=1,lr=1e-3', 'noisy_labels:noise=0.1,flip=0.1'],
])
def test_resume_matches_an_uninterrupted_run(tmp_path, specs):
    tricks_args = [a for s in specs for a in ('--trick', s)]
    assert main(['--out', str(tmp_path/'whole'), '--steps', '100', *SMALL, *tricks_args]) == 0
    assert main(['--out', str(tmp_path/'part'), '--steps', '50', *SMALL, *tricks_args]) == 0
    assert main(['--out', str(tmp_path/'part'), '--resume', '--steps', '100', '--quiet']) == 0
    w, p = checkpoint(tmp_path/'whole'), checkpoint(tmp_path/'part')
    assert w['step'] == p['step'] == 100
    for key in ('generator', 'discriminator', 'loss', 'callbacks'):
        assert same(w[key], p[key]), key
    assert history(tmp_path/'whole') == history(tmp_path/'part')


def test_stateful_tricks_keep_their_state_in_the_checkpoint(tmp_path):
    assert main(['--out', str(tmp_path/'r'), '--steps', '30', *SMALL, '--trick', 'historical_averaging:player="d"',
                 '--trick', 'instance_noise:sigma=0.5,steps=40']) == 0
    s = checkpoint(tmp_path/'r')
    assert s['loss']['d_terms'][0]['count'] == 31 and s['loss']['g_terms'] == []
    assert math.isclose(s['callbacks']['InstanceNoiseSchedule']['sigma'], 0.5 * (1 - 30 / 40), rel_tol=1e-6)
    assert math.isclose(float(s['discriminator']['sigma']), 0.5 * (1 - 30 / 40), rel_tol=1e-6)
    assert json.loads((tmp_path/'r'/'config.json').read_text())['tricks'] == ['historical_averaging:player="d"', 'instance_noise:sigma=0.5,steps=40']


def test_command_line_reports_bad_tricks(tmp_path, capsys):
    assert main(['--out', str(tmp_path/'a'), '--steps', '2', '--quiet', '--trick', 'nonsense']) == 2
    assert "unknown trick 'nonsense'; valid names:" in capsys.readouterr().err
    assert main(['--out', str(tmp_path/'b'), '--steps', '2', '--quiet', '--batch-size', '30', '--trick', 'pack:m=4']) == 2
    assert 'm: expected a packing degree that divides the batch size 30, got 4' in capsys.readouterr().err
    assert main(['--out', str(tmp_path/'c'), '--steps', '2', '--quiet', '--trick', 'r1:gama=1']) == 2
    assert "r1: gama: expected one of the arguments gamma" in capsys.readouterr().err


# ---------------------------------------------------------------- the experiment helper (ganlab.mode_collapse)
def test_mode_collapse_study_resumes_and_summarizes(tmp_path):
    from ganlab.mode_collapse import study, methods, main
    from ganlab.studies import run_study, summarize_seeds
    names = ['NS-GAN (baseline)', 'PacGAN (m = 2)']
    s, lines = study(steps=3, width=8, batch_size=16, seeds=(0, 1)), []
    res = run_study(s, tmp_path/'r', methods=names, datasets=('ring8',), log=lines.append)
    assert len(res['runs']) == 4 and len(lines) == 4 and json.loads((tmp_path/'r'/'results.json').read_text())['runs'] == res['runs']
    again = run_study(s, tmp_path/'r', methods=names, datasets=('ring8',), log=lines.append)
    assert len(lines) == 4 and again['runs'] == res['runs']                  # finished runs are skipped
    rows = summarize_seeds(res)
    assert [r['method'] for r in rows] == names and all(r['n'] == 2 and r['n_modes'] == 8 for r in rows)
    hq = [r['high_quality'] for r in res['runs'] if r['method'] == names[1]]
    assert math.isclose(rows[1]['high_quality'], sum(hq) / 2) and math.isclose(rows[1]['high_quality_se'], abs(hq[0] - hq[1]) / 2)
    assert set(methods(10)) >= set(names) and 'instance_noise:sigma=0.1,steps=5' in methods(10)['instance noise']['tricks']
    assert list(methods(10, controls=True)) == ['instance noise, σ = 1e-4 (control)']
    assert s.config('PacGAN (m = 2)', 'grid25', 1).tricks == ('pack:m=2',) and s.config('WGAN-GP', 'ring8', 0).loss == 'wgan-gp'
    with pytest.raises(ValueError, match='^methods: expected names from'):
        run_study(s, None, methods=['nope'])
    assert main(['--out', str(tmp_path/'m'), '--steps', '2', '--seeds', '0', '--datasets', 'ring8', '--width', '8',
                 '--batch-size', '16', '--controls']) == 0
    stored = json.loads((tmp_path/'m'/'results.json').read_text())
    assert stored['command'].startswith('python -m ganlab.mode_collapse --out') and len(stored['runs']) == 1
    assert stored['settings']['study'] == 'mode-collapse-controls'


def test_stored_mode_collapse_results_match_the_study():
    "The committed results were made with the settings `study()` states: resuming them has nothing left to run."
    from ganlab.mode_collapse import study
    from ganlab.studies import run_study
    for controls in (False, True):
        s = study(3000, controls)
        res = run_study(s, Path(__file__).resolve().parents[1]/'data'/'experiments'/s.name, log=lambda m: pytest.fail(f'would train: {m}'))
        assert len(res['runs']) == len(s.methods) * 2 * 3
