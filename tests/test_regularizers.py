"""Tests for ganlab.regularizers: closed forms for every penalty, gradcheck in float64, historical averaging's
bookkeeping, spectral normalization against the exact spectral norm, and the Penalized wrapper's composition."""
import math
import pytest
import torch
import torch.nn as nn
from torch.autograd import gradcheck

from ganlab import losses as L
from ganlab.models import MLPDiscriminator, DCGANDiscriminator
from ganlab.regularizers import (input_gradients, one_sided_gradient_penalty, r1_penalty, r2_penalty, orthogonal_penalty,
                                 apply_spectral_norm, power_iteration, gradient_penalty, dragan_penalty, clip_weights,
                                 Penalty, GradientPenalty, DRAGANPenalty, R1, R2, WeightClipping, OrthogonalPenalty,
                                 HistoricalAveraging, LossWrapper, Penalized)


class Linear1(nn.Module):
    "D(x) = <w, x> over all features: input gradient w everywhere."
    def __init__(self, w, dtype=torch.float64):
        super().__init__(); self.w = nn.Parameter(torch.as_tensor(w, dtype=dtype))
    def forward(self, x): return x.flatten(1) @ self.w


def half_square(x):
    "D(x) = ½‖x‖² per sample: input gradient x, so the norm depends on where x̂ lands."
    return 0.5 * x.flatten(1).pow(2).sum(1)


# ---------------------------------------------------------------- gradient penalties
def test_reexports_are_the_losses_functions():
    assert gradient_penalty is L.gradient_penalty and dragan_penalty is L.dragan_penalty and clip_weights is L.clip_weights


@pytest.mark.parametrize('norm', [0., 0.5, 1., 2., 3.])
def test_gradient_penalties_closed_forms_on_images(norm):
    x, xt = torch.randn(5, 3, 4, 4, dtype=torch.float64), torch.randn(5, 3, 4, 4, dtype=torch.float64)
    D = Linear1(torch.full((48,), norm / math.sqrt(48)))            # ‖w‖ over all C·H·W features
    assert torch.isclose(gradient_penalty(D, x, xt, lam=7.), torch.tensor(7 * (norm - 1) ** 2, dtype=torch.float64))
    assert torch.isclose(one_sided_gradient_penalty(D, x, xt, lam=7.), torch.tensor(7 * max(norm - 1, 0) ** 2, dtype=torch.float64))
    assert torch.isclose(r1_penalty(D, x, gamma=3.), torch.tensor(1.5 * norm ** 2, dtype=torch.float64))
    assert torch.isclose(r2_penalty(D, xt, gamma=3.), torch.tensor(1.5 * norm ** 2, dtype=torch.float64))


def test_one_sided_penalty_uses_one_alpha_per_sample_and_per_sample_norms():
    real, fake = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(6, 2, 3, dtype=torch.float64)
    torch.manual_seed(3); got = one_sided_gradient_penalty(half_square, real, fake, lam=2.)
    torch.manual_seed(3); alpha = torch.rand(6, 1, 1, dtype=torch.float64)
    x_hat = alpha * real + (1 - alpha) * fake
    expected = 2 * torch.relu(x_hat.flatten(1).norm(dim=1) - 1).pow(2).mean()
    assert torch.isclose(got, expected)


def test_r1_and_r2_are_per_sample_squared_norms():
    x = torch.randn(7, 3, 2, 2, dtype=torch.float64)
    assert torch.isclose(r1_penalty(half_square, x, gamma=4.), 2 * x.flatten(1).pow(2).sum(1).mean())
    assert torch.isclose(r2_penalty(half_square, x, gamma=4.), 2 * x.flatten(1).pow(2).sum(1).mean())


def test_penalties_gradcheck_in_float64():
    torch.manual_seed(0)
    W0, v = torch.randn(4, 5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    D = lambda W: (lambda x: torch.tanh(x @ W) @ v)
    real, fake = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)

    def seeded(fn):
        def call(*a): torch.manual_seed(1); return fn(*a)
        return call
    inputs = lambda: (W0.clone().requires_grad_(), real.clone().requires_grad_(), fake.clone().requires_grad_())
    assert gradcheck(seeded(lambda W, r, f: one_sided_gradient_penalty(D(W), r, f, lam=3.)), inputs())
    assert gradcheck(seeded(lambda W, r, f: gradient_penalty(D(W), r, f, lam=3.)), inputs())
    assert gradcheck(lambda W, r: r1_penalty(D(W), r, gamma=3.), inputs()[:2])
    assert gradcheck(lambda W: r2_penalty(D(W), fake, gamma=3.), inputs()[:1])


def test_r2_does_not_reach_the_generator():
    fake = torch.randn(4, 2, requires_grad=True)
    D = MLPDiscriminator(2, (8,))
    r2_penalty(D, fake).backward()
    assert fake.grad is None and D.body[0].weight.grad.abs().sum() > 0      # (biases do not move ∇ₓD)


def test_input_gradients_of_a_constant_discriminator_are_zero():
    const = lambda x: torch.zeros(len(x))
    assert torch.equal(input_gradients(const, torch.ones(3, 2)), torch.zeros(3, 2))
    assert r1_penalty(const, torch.ones(3, 2)).item() == 0.


def test_penalty_bad_input():
    with pytest.raises(ValueError, match='^fake: expected the shape of real'):
        one_sided_gradient_penalty(half_square, torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match='^real: expected a non-empty floating-point batch'):
        r1_penalty(half_square, torch.zeros(3))
    with pytest.raises(ValueError, match='^D\\(x\\): expected one raw score per sample'):
        r1_penalty(lambda x: x, torch.zeros(3, 2))


# ---------------------------------------------------------------- orthogonal regularization
def test_orthogonal_penalty_is_zero_for_orthogonal_weights():
    Q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    assert orthogonal_penalty(Q, beta=1.).item() < 1e-24
    assert orthogonal_penalty(Q[:4], beta=1.).item() < 1e-24                    # orthonormal rows, 4 × 6
    assert orthogonal_penalty(torch.diag(torch.tensor([1., 5., 9.], dtype=torch.float64)) @ Q[:3], 1.).item() < 1e-20
    assert orthogonal_penalty(torch.eye(3)).item() == 0.


def test_orthogonal_penalty_value_and_gradient():
    W = torch.tensor([[1., 2., 0.], [3., 4., 1.]], dtype=torch.float64, requires_grad=True)
    gram = W.detach() @ W.detach().T                                              # off-diagonal 11
    assert gram[0, 1] == 11 and orthogonal_penalty(W, beta=0.25).item() == 0.25 * 2 * 11 ** 2
    orthogonal_penalty(W, beta=0.25).backward()
    A = gram * (1 - torch.eye(2, dtype=torch.float64))
    assert torch.allclose(W.grad, 4 * 0.25 * A @ W.detach())


def test_orthogonal_penalty_on_modules_and_lists():
    torch.manual_seed(0)
    D = DCGANDiscriminator(1, 28, 8)
    weights = [p for p in D.parameters() if p.ndim >= 2]
    total = sum(orthogonal_penalty(w.flatten(1), 1e-3) for w in weights)
    assert torch.isclose(orthogonal_penalty(D, 1e-3), total) and torch.isclose(orthogonal_penalty(weights, 1e-3), total)


def test_orthogonal_penalty_bad_input():
    with pytest.raises(ValueError, match=r'^weights\[0\]: expected a tensor with at least 2 dimensions'):
        orthogonal_penalty(torch.ones(3))
    with pytest.raises(ValueError, match='^weights: expected at least one weight matrix'):
        orthogonal_penalty(nn.ReLU())
    with pytest.raises(ValueError, match='^beta: expected a number >= 0'):
        orthogonal_penalty(torch.eye(2), beta=-1.)


# ---------------------------------------------------------------- spectral normalization
def test_spectral_norm_makes_every_layer_norm_one():
    torch.manual_seed(0)
    D = apply_spectral_norm(MLPDiscriminator(2, (32, 32)), n_power_iterations=5)
    for _ in range(20): D(torch.randn(4, 2))
    for m in D.modules():
        if isinstance(m, nn.Linear):
            assert abs(torch.linalg.matrix_norm(m.weight.detach(), ord=2).item() - 1) < 1e-4


def test_spectral_norm_on_convolutions_normalises_the_reshaped_kernel():
    torch.manual_seed(0)
    D = apply_spectral_norm(DCGANDiscriminator(1, 28, 8), n_power_iterations=10)
    for _ in range(10): D(torch.randn(2, 1, 28, 28))
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2
    for m in convs: assert abs(torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item() - 1) < 1e-3


def test_spectral_norm_is_idempotent_and_checked():
    D = apply_spectral_norm(MLPDiscriminator(2, (8,)))
    keys = set(D.state_dict())
    apply_spectral_norm(D)
    assert set(D.state_dict()) == keys and sum('_u' in k for k in keys) == 2
    with pytest.raises(ValueError, match='^module: expected a module with linear or convolution layers'):
        apply_spectral_norm(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match='^n_power_iterations: expected a positive integer'):
        apply_spectral_norm(MLPDiscriminator(), n_power_iterations=0)


def test_power_iteration_converges_from_below():
    torch.manual_seed(1)
    W = torch.randn(20, 10, dtype=torch.float64)
    exact = torch.linalg.matrix_norm(W, ord=2)
    sigma, u, v = power_iteration(W, 500)
    assert torch.isclose(sigma, exact) and torch.isclose(u.norm(), torch.tensor(1., dtype=torch.float64))
    assert power_iteration(W, 1)[0] <= exact + 1e-12


# ---------------------------------------------------------------- historical averaging
def flat(module): return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_historical_averaging_zero_before_any_update_and_hand_value_after_one():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    ha = HistoricalAveraging(weight=0.5)
    assert ha(lin).item() == 0. and ha.count == 1
    theta0 = flat(lin)
    with torch.no_grad():
        for p in lin.parameters(): p.add_(torch.randn_like(p))
    ha.after_step(lin)
    theta1 = flat(lin)
    assert torch.isclose(ha(lin), 0.5 * (theta1 - (theta0 + theta1) / 2).pow(2).sum())
    assert torch.isclose(ha(lin), 0.5 * (theta1 - theta0).pow(2).sum() / 4)
    with torch.no_grad():
        for p in lin.parameters(): p.mul_(-2.)
    ha.after_step(lin)
    theta2 = flat(lin)
    assert ha.count == 3 and torch.isclose(ha(lin), 0.5 * (theta2 - (theta0 + theta1 + theta2) / 3).pow(2).sum())


def test_historical_averaging_gradient_pulls_towards_the_mean():
    lin = nn.Linear(2, 1)
    ha = HistoricalAveraging(weight=1.)
    ha(lin)
    with torch.no_grad(): lin.weight.add_(1.)
    ha.after_step(lin)
    ha(lin).backward()
    assert torch.allclose(lin.weight.grad, torch.full_like(lin.weight, 2 * 0.5))     # 2·(θ − θ̄), θ − θ̄ = 0.5


def test_historical_averaging_state_round_trip_and_module_binding():
    G = nn.Linear(2, 2)
    ha = HistoricalAveraging(weight=1., module=G)
    assert ha.state_dict() == {}
    ha(None); ha.after_step(None)
    with torch.no_grad(): G.bias.add_(1.)
    ha.after_step(None)
    other = HistoricalAveraging(weight=1., module=G); other.load_state_dict(ha.state_dict())
    assert other.count == 3 and torch.equal(other(None), ha(None)) and other(None) > 0
    fresh = ha.fresh()
    assert fresh.count == 0 and fresh.module is G
    with pytest.raises(ValueError, match='^state: expected an empty dict or one with the keys'):
        other.load_state_dict({'mean': {}})
    with pytest.raises(ValueError, match='^weight: expected a number >= 0'):
        HistoricalAveraging(weight=-1.)


# ---------------------------------------------------------------- terms and the Penalized wrapper
def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)


def test_penalized_wgan_plus_gp_is_wgan_gp():
    torch.manual_seed(0)
    D = MLPDiscriminator(2, (16, 16)); real, fake = batch(32)
    torch.manual_seed(5); a = Penalized(L.WGAN(), GradientPenalty(10.)).d_loss(D, real, fake)
    torch.manual_seed(5); b = L.WGANGP(10.).d_loss(D, real, fake)
    assert torch.equal(a, b)


def test_penalized_adds_each_term_and_logs_it():
    torch.manual_seed(0)
    D = MLPDiscriminator(2, (16,)); real, fake = batch()
    loss = Penalized(L.NSGAN(), R1(4.), R2(2.), OrthogonalPenalty(1e-2))
    value = loss.d_loss(D, real, fake)
    expected = L.nsgan.d_loss(D, real, fake) + r1_penalty(D, real, 4.) + r2_penalty(D, fake, 2.) + orthogonal_penalty(D, 1e-2)
    assert torch.isclose(value, expected)
    assert set(loss.stats) == {'d_real', 'd_fake', 'r1', 'r2', 'ortho'}
    assert torch.isclose(loss.stats['r1'], r1_penalty(D, real, 4.))


def test_penalized_generator_terms_are_prefixed_and_use_the_bound_module():
    torch.manual_seed(0)
    G, D = nn.Linear(2, 2), MLPDiscriminator(2, (8,)); real, fake = batch()
    loss = Penalized(L.NSGAN(), R1(1.), g_terms=[OrthogonalPenalty(1., module=G), HistoricalAveraging(1., module=G)])
    loss.d_loss(D, real, fake)
    g = loss.g_loss(D, G(fake))
    assert set(loss.stats) == {'d_fake', 'g_ortho', 'g_hist_avg'}
    assert torch.isclose(g, L.nsgan.g_loss(D, G(fake)) + orthogonal_penalty(G, 1.))
    loss.after_g_update(G)
    assert loss.g_terms[1].count == 2


def test_penalized_forwards_hooks_to_the_base_and_terms():
    D = MLPDiscriminator(2, (8,))
    with torch.no_grad():
        for p in D.parameters(): p.fill_(1.)
    Penalized(L.WGAN(clip=0.5), R1()).after_d_update(D)                       # WGAN's clipping still happens
    assert max(p.abs().max().item() for p in D.parameters()) == 0.5
    Penalized(L.NSGAN(), WeightClipping(0.1)).after_d_update(D)
    assert max(p.abs().max().item() for p in D.parameters()) == pytest.approx(0.1)
    assert WeightClipping(0.1)(D, None, None) is None


def test_penalized_state_round_trip_nests_the_base_state():
    D = MLPDiscriminator(2, (8,)); real, fake = batch()
    began_like = Penalized(L.BEGAN(), HistoricalAveraging(1.))
    assert began_like.state_dict()['base'].keys() == {'k_t'}
    loss = Penalized(L.NSGAN(), R1(), HistoricalAveraging(1.))
    loss.d_loss(D, real, fake); loss.after_d_update(D)
    state = loss.state_dict()
    assert state['d_terms'][0] == {} and state['d_terms'][1]['count'] == 2
    other = loss.fresh()
    assert other.d_terms[1].count == 0
    other.load_state_dict(state)
    assert torch.equal(other.d_terms[1](D), loss.d_terms[1](D))
    with pytest.raises(ValueError, match="^state: expected a dict with the key 'base'"):
        other.load_state_dict({})
    with pytest.raises(ValueError, match="^state: expected 'd_terms' with 2"):
        other.load_state_dict({'base': {}, 'd_terms': [{}], 'g_terms': []})


def test_penalized_passes_labels_to_a_conditional_discriminator():
    class CondD(nn.Module):
        def __init__(self): super().__init__(); self.emb = nn.Embedding(3, 2)
        def forward(self, x, y): return (x * self.emb(y)).sum(1)
    D, real, fake, y = CondD(), torch.randn(6, 2), torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    loss = Penalized(L.CGAN(n_classes=3), R1(2.), R2(2.), GradientPenalty(1.))
    value = loss.d_loss(D, real, fake, y=y, y_fake=y.flip(0))
    assert torch.isclose(loss.stats['r1'], (D.emb(y).pow(2).sum(1)).mean())              # ∇ₓD(x, y) = emb(y)
    assert torch.isclose(loss.stats['r2'], (D.emb(y.flip(0)).pow(2).sum(1)).mean())
    assert torch.isfinite(value) and loss.conditioning == 'labels'


def test_d_objective_keeps_the_fake_batch_in_the_graph():
    torch.manual_seed(0)
    D = MLPDiscriminator(2, (8,)); real, fake = batch()
    fake.requires_grad_()
    for loss in (L.NSGAN(), L.WGANGP(), Penalized(L.Hinge(), R2(1.)), L.RaGAN()):
        torch.manual_seed(2); a = loss.d_objective(D, real, fake)
        torch.manual_seed(2); b = loss.d_loss(D, real, fake)
        assert torch.isclose(a, b), loss
        g, = torch.autograd.grad(a, fake, allow_unused=True)
        assert g is not None and g.abs().sum() > 0, loss


def test_wrappers_refuse_bad_arguments():
    with pytest.raises(ValueError, match='^terms: expected at least one penalty term'):
        Penalized(L.nsgan)
    with pytest.raises(ValueError, match='^terms: expected ganlab.regularizers.Penalty objects'):
        Penalized(L.nsgan, lambda *a: 0)
    with pytest.raises(ValueError, match='^base: expected a ganlab.losses.Loss'):
        LossWrapper(object())
    for make, name in ((lambda: GradientPenalty(-1.), 'lam'), (lambda: DRAGANPenalty(c=-1.), 'c'), (lambda: R1(-1.), 'gamma'),
                       (lambda: R2(float('nan')), 'gamma'), (lambda: WeightClipping(0.), 'c'), (lambda: OrthogonalPenalty(-1.), 'beta')):
        with pytest.raises(ValueError, match=f'^{name}: expected'): make()
    with pytest.raises(ValueError, match='^one_sided: expected True or False'):
        GradientPenalty(one_sided='yes')


def test_dragan_term_is_dragan_penalty():
    D = MLPDiscriminator(2, (8,)); real, fake = batch()
    torch.manual_seed(4); a = DRAGANPenalty(5., 0.3)(D, real, fake)
    torch.manual_seed(4); b = dragan_penalty(D, real, 5., 0.3)
    assert torch.equal(a, b)
