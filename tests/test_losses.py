"""Tests for ganlab.losses: each loss against a plain re-implementation of its formula (numpy, float64),
closed forms for the penalties, gradient routing, hooks and state, and bad input."""
import io
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ganlab import losses as L
from ganlab.losses import (get, losses, Loss, gan, nsgan, lsgan, wgan, wgan_gp, dragan, hinge, ragan, cgan, acgan,
                           infogan, ebgan, began, WGAN, WGANGP, DRAGAN, CGAN, InfoGAN, EBGAN, BEGAN, RaGAN,
                           gradient_penalty, dragan_penalty, pulling_away, began_k_update)

SCORE_LOSSES = ['gan', 'nsgan', 'lsgan', 'wgan', 'wgan_gp', 'dragan', 'hinge', 'ragan']
R = np.array([2.0, -1.0, 0.5, 3.0])
FK = np.array([-3.0, 0.3, 1.0, -0.5])


def first(x):
    "A discriminator that reads its score off the first feature (gradient e_1: norm 1 everywhere)."
    return x[:, 0]


def as_batch(scores, dtype=torch.float32):
    return torch.as_tensor(np.asarray(scores), dtype=dtype)[:, None]


def softplus(x): return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)
def sigmoid(x): return 1 / (1 + np.exp(-x))


# Independent implementations, written from the formulas: (D's minimised loss, G's minimised loss).
REFERENCE = {
    'gan': (lambda r, f: -np.log(sigmoid(r)).mean() - np.log(1 - sigmoid(f)).mean(),
            lambda r, f: np.log(1 - sigmoid(f)).mean()),
    'nsgan': (lambda r, f: -np.log(sigmoid(r)).mean() - np.log(1 - sigmoid(f)).mean(),
              lambda r, f: -np.log(sigmoid(f)).mean()),
    'lsgan': (lambda r, f: ((r - 1) ** 2).mean() + (f ** 2).mean(), lambda r, f: ((f - 1) ** 2).mean()),
    'wgan': (lambda r, f: f.mean() - r.mean(), lambda r, f: -f.mean()),
    'hinge': (lambda r, f: np.maximum(0, 1 - r).mean() + np.maximum(0, 1 + f).mean(), lambda r, f: -f.mean()),
    'ragan': (lambda r, f: -np.log(sigmoid(r - f.mean())).mean() - np.log(1 - sigmoid(f - r.mean())).mean(),
              lambda r, f: -np.log(sigmoid(f - r.mean())).mean() - np.log(1 - sigmoid(r - f.mean())).mean()),
}


# ---------------------------------------------------------------- registry and objects
def test_registry_holds_every_course_loss():
    expected = {'gan', 'nsgan', 'lsgan', 'wgan', 'wgan_gp', 'dragan', 'hinge', 'cgan', 'cgan_hinge', 'acgan',
                'infogan', 'ebgan', 'began', 'ragan'}
    assert set(losses.names) == expected
    assert get('wgan-gp') is get('WGAN_GP') is wgan_gp is losses['Wgan-Gp']
    assert get('nsgan') is nsgan and isinstance(nsgan, Loss)
    with pytest.raises(KeyError, match='nsgan'):
        get('no-such-loss')


def test_course_defaults_and_classes():
    assert wgan.clip == 0.01 and wgan_gp.lam == 10 and dragan.lam == 10 and dragan.c == 0.5
    assert (began.gamma, began.lambda_k, float(began.k_t)) == (0.5, 1e-3, 0.0)
    assert (ebgan.margin, ebgan.pt_weight) == (1.0, 0.1)
    assert (infogan.n_classes, infogan.n_continuous, infogan.lam) == (10, 2, 1.0)
    assert WGANGP(lam=5.).lam == 5 and repr(WGANGP(lam=5.)) == 'WGANGP(lam=5.0)'
    fresh = began.fresh()
    assert fresh is not began and fresh.hparams == began.hparams


@pytest.mark.parametrize('make, arg', [(lambda: WGANGP(lam=-1), 'lam'), (lambda: WGAN(clip=0), 'clip'),
                                       (lambda: DRAGAN(c=-0.5), 'c'), (lambda: BEGAN(k0=2.), 'k0'),
                                       (lambda: BEGAN(gamma=0), 'gamma'), (lambda: EBGAN(margin=0), 'margin'),
                                       (lambda: CGAN(n_classes=0), 'n_classes'),
                                       (lambda: InfoGAN(n_classes=-1), 'n_classes'), (lambda: WGANGP(lam='10'), 'lam')])
def test_bad_settings_name_the_argument(make, arg):
    with pytest.raises(ValueError, match=f'^{arg}: expected'):
        make()


# ---------------------------------------------------------------- values against formulas
@pytest.mark.parametrize('name', sorted(REFERENCE))
def test_score_losses_match_formula(name):
    loss, (d_ref, g_ref) = get(name).fresh(), REFERENCE[name]
    real, fake = as_batch(R, torch.float64), as_batch(FK, torch.float64)
    d = loss.d_loss(first, real, fake)
    assert d.shape == () and d.item() == pytest.approx(d_ref(R, FK), rel=1e-12)
    assert loss.stats['d_real'].item() == pytest.approx(R.mean()) and loss.stats['d_fake'].item() == pytest.approx(FK.mean())
    g = loss.g_loss(first, fake, real=real) if name == 'ragan' else loss.g_loss(first, fake)
    assert g.shape == () and g.item() == pytest.approx(g_ref(R, FK), rel=1e-12)


def test_bce_losses_agree_with_torch_bce():
    r, f = torch.tensor(R, dtype=torch.float32), torch.tensor(FK, dtype=torch.float32)
    bce = F.binary_cross_entropy(torch.sigmoid(r), torch.ones(4)) + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros(4))
    assert torch.allclose(nsgan.d_loss(first, r[:, None], f[:, None]), bce)
    assert torch.allclose(nsgan.g_loss(first, f[:, None]), F.binary_cross_entropy(torch.sigmoid(f), torch.ones(4)))


def test_penalised_losses_are_base_plus_penalty():
    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    w = torch.tensor([3.0, 0.0, 4.0])                      # norm 5: penalty λ·16
    lin = lambda x: x @ w
    assert wgan_gp.d_loss(lin, real, fake).item() == pytest.approx(((fake @ w).mean() - (real @ w).mean()).item() + 160, rel=1e-5)
    assert wgan_gp.stats['penalty'].item() == pytest.approx(160)
    s_r, s_f = (real @ w).double().numpy(), (fake @ w).double().numpy()
    assert dragan.d_loss(lin, real, fake).item() == pytest.approx(REFERENCE['gan'][0](s_r, s_f) + 160, rel=1e-5)
    assert dragan.g_loss(lin, fake).item() == pytest.approx(REFERENCE['nsgan'][1](s_r, s_f), rel=1e-5)


@pytest.mark.parametrize('name', SCORE_LOSSES)
def test_extreme_logits_stay_finite(name):
    loss = get(name).fresh()
    for r, f in ((100., -100.), (-100., 100.)):
        real = torch.full((4, 2), r, requires_grad=True)
        fake = torch.full((4, 2), f, requires_grad=True)
        d = loss.d_loss(first, real, fake)
        g = loss.g_loss(first, fake)
        grads = torch.autograd.grad(d + g, (real, fake), allow_unused=True)
        assert torch.isfinite(d) and torch.isfinite(g), (name, d, g)
        assert all(gr is None or torch.isfinite(gr).all() for gr in grads)


def test_extreme_logit_values():
    big, small = torch.full((3, 1), 100.), torch.full((3, 1), -100.)
    assert nsgan.d_loss(first, big, small).item() == pytest.approx(0, abs=1e-30)
    assert nsgan.d_loss(first, small, big).item() == pytest.approx(200)
    assert nsgan.g_loss(first, small).item() == pytest.approx(100)
    assert gan.g_loss(first, big).item() == pytest.approx(-100)


# ---------------------------------------------------------------- gradient penalty
def test_gradient_penalty_closed_forms():
    real, fake = torch.randn(16, 3, 4, 4), torch.randn(16, 3, 4, 4)
    w = torch.randn(48)
    assert gradient_penalty(lambda x: x.flatten(1) @ w + 2., real, fake).item() == pytest.approx(10 * (w.norm().item() - 1) ** 2, rel=1e-5)
    assert gradient_penalty(lambda x: x.flatten(1) @ w, real, fake, lam=5.).item() == pytest.approx(5 * (w.norm().item() - 1) ** 2, rel=1e-5)
    assert gradient_penalty(lambda x: x.flatten(1) @ (w / w.norm()), real, fake).item() == pytest.approx(0, abs=1e-9)
    assert gradient_penalty(lambda x: torch.zeros(len(x)), real, fake).item() == 10        # constant critic
    bias = nn.Parameter(torch.tensor(0.5))
    assert gradient_penalty(lambda x: bias.expand(len(x)), real, fake, lam=3.).item() == 3  # ignores x, has params
    assert dragan_penalty(lambda x: x.flatten(1) @ w, real).item() == pytest.approx(10 * (w.norm().item() - 1) ** 2, rel=1e-5)


def plain_gradient_penalty(D, real, fake, lam):
    "The textbook version, written out: per-sample alpha, per-sample norm over all features."
    alpha = torch.rand(real.shape[0], device=real.device, dtype=real.dtype).view(-1, *[1] * (real.dim() - 1))
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(x).sum(), x)
    return lam * ((grad.reshape(len(x), -1).pow(2).sum(1).sqrt() - 1) ** 2).mean()


def test_gradient_penalty_is_per_sample():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    real, fake = torch.randn(8, 3, 4, 4, dtype=torch.float64), torch.randn(8, 3, 4, 4, dtype=torch.float64)
    torch.manual_seed(5); ours = gradient_penalty(D, real, fake)
    torch.manual_seed(5); plain = plain_gradient_penalty(D, real, fake, 10.)
    assert ours.item() == pytest.approx(plain.item(), rel=1e-12)
    # the two classic bugs give other numbers on the same draw: one alpha for the batch, one norm for the batch
    torch.manual_seed(5); alpha = torch.rand(8, dtype=torch.float64)
    x = (alpha[0] * real + (1 - alpha[0]) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(x).sum(), x)
    assert abs(10 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean().item() - ours.item()) > 1e-6
    x = (alpha.view(-1, 1, 1, 1) * real + (1 - alpha.view(-1, 1, 1, 1)) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(x).sum(), x)
    assert abs(10 * (grad.norm() - 1).item() ** 2 - ours.item()) > 1e-6


def test_quadratic_critic_norm_runs_over_all_features():
    quadratic = lambda x: 0.5 * x.pow(2).flatten(1).sum(1)          # gradient at x is x
    torch.manual_seed(1); alpha = torch.rand(6)
    torch.manual_seed(1); value = gradient_penalty(quadratic, torch.ones(6, 3, 2, 2), torch.zeros(6, 3, 2, 2))
    assert value.item() == pytest.approx((10 * (alpha * 12 ** 0.5 - 1) ** 2).mean().item(), rel=1e-6)


def test_dragan_perturbation_and_penalty():
    torch.manual_seed(0)
    real = torch.randn(10, 2, 3, 3, dtype=torch.float64)
    seen = []
    def D(x): seen.append(x.detach()); return 0.5 * x.pow(2).flatten(1).sum(1)
    torch.manual_seed(3); value = dragan_penalty(D, real)
    x_hat = seen[0]
    std = real.std(correction=0)
    assert ((x_hat >= real - 1e-12) & (x_hat <= real + 0.5 * std + 1e-12)).all()     # x + 0.5·std·U[0,1)
    torch.manual_seed(3)
    u = torch.rand(real.shape, dtype=torch.float64)
    a = torch.rand(10, dtype=torch.float64).view(-1, 1, 1, 1)
    expected = a * real + (1 - a) * (real + 0.5 * std * u)
    assert torch.allclose(x_hat, expected)
    norms = expected.reshape(10, -1).pow(2).sum(1).sqrt()                             # per sample, all features
    assert value.item() == pytest.approx((10 * (norms - 1) ** 2).mean().item(), rel=1e-12)


def test_penalty_random_numbers_follow_data_dtype():
    seen = []
    def D(x): seen.append(x); return x.flatten(1).sum(1)
    real = torch.randn(4, 3, dtype=torch.float64)
    gradient_penalty(D, real, real.clone()); dragan_penalty(D, real)
    assert all(x.dtype == torch.float64 and x.device == real.device for x in seen)


def _gradcheck_critic(W1, w2):
    return lambda x: torch.tanh(x.flatten(1) @ W1) @ w2


def test_gradcheck_gradient_penalty():
    torch.manual_seed(0)
    W1 = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(5, dtype=torch.float64, requires_grad=True)
    real = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def fn(W1, w2, real, fake):
        with torch.random.fork_rng():
            torch.manual_seed(7)
            return gradient_penalty(_gradcheck_critic(W1, w2), real, fake)
    assert torch.autograd.gradcheck(fn, (W1, w2, real, fake))


def test_gradcheck_dragan_penalty():
    torch.manual_seed(0)
    W1 = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(5, dtype=torch.float64, requires_grad=True)
    real = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def fn(W1, w2, real):
        with torch.random.fork_rng():
            torch.manual_seed(7)
            return dragan_penalty(_gradcheck_critic(W1, w2), real)
    assert torch.autograd.gradcheck(fn, (W1, w2, real))


# ---------------------------------------------------------------- gradient routing
class ToyD(nn.Module):
    "One discriminator of each kind on 2-D data."
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.body, self.adv, self.head = nn.Linear(2, 8), nn.Linear(8, 1), nn.Linear(8, 3)
        self.embed, self.dec = nn.Embedding(3, 8), nn.Linear(8, 2)

    def forward(self, x, y=None):
        h = torch.tanh(self.body(x) + (self.embed(y) if y is not None else 0))
        if self.kind == 'score': return self.adv(h)
        if self.kind == 'heads': return self.adv(h), self.head(h)
        return self.dec(h), h


LABELS = torch.tensor([0, 1, 2, 1])
SETUP = {'acgan': ('heads', dict(y=LABELS)), 'ebgan': ('ae', {}), 'began': ('ae', {}),
         'infogan': ('heads', dict(c=torch.tensor([[1., 0., 0.3], [0., 1., -1.], [1., 0., 0.], [0., 1., 2.]]))),
         'cgan': ('score', dict(y=LABELS)), 'cgan_hinge': ('score', dict(y=LABELS))}


def make_loss(name):
    return InfoGAN(n_classes=2, n_continuous=1) if name == 'infogan' else get(name).fresh()


@pytest.mark.parametrize('name', sorted(losses.names))
def test_gradients_reach_only_the_intended_player(name):
    torch.manual_seed(0)
    kind, cond = SETUP.get(name, ('score', {}))
    loss, D, G = make_loss(name), ToyD(kind), nn.Linear(3, 2)
    z, real = torch.randn(4, 3), torch.randn(4, 2)
    d = loss.d_loss(D, real, G(z), **cond)
    assert d.shape == () and d.dtype == torch.float32
    d.backward()
    assert all(p.grad is None for p in G.parameters())                  # fake is detached inside d_loss
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())
    loss.after_d_update(D)
    D.zero_grad(set_to_none=True)
    g = loss.g_loss(D, G(z), **cond)
    assert g.shape == ()
    g.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    loss.after_g_update(G)
    assert loss.stats and all(torch.is_tensor(v) and v.shape == () and not v.requires_grad for v in loss.stats.values())


def test_stats_names_are_shared():
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    for name in ['nsgan', 'wgan_gp', 'hinge']:
        get(name).d_loss(ToyD('score'), real, fake)
        assert {'d_real', 'd_fake'} <= set(get(name).stats)
    assert 'penalty' in wgan_gp.stats and 'penalty' in (dragan.d_loss(ToyD('score'), real, fake), dragan.stats)[1]
    b = BEGAN(); b.d_loss(ToyD('ae'), real, fake)
    assert set(b.stats) == {'d_real', 'd_fake', 'k_t', 'convergence'}


# ---------------------------------------------------------------- WGAN clipping
def test_wgan_clips_after_the_critic_step_only():
    D = nn.Sequential(nn.Linear(2, 4), nn.Linear(4, 1))
    with torch.no_grad():
        for p in D.parameters(): p.mul_(100)
    wgan.d_loss(D, torch.randn(3, 2), torch.randn(3, 2))
    assert max(p.abs().max() for p in D.parameters()) > 0.01             # d_loss never clips
    wgan.after_d_update(D)
    assert all(p.abs().max() <= 0.01 for p in D.parameters())
    WGAN(clip=0.5).after_d_update(D)                                      # within a larger box nothing moves
    assert all(p.abs().max() <= 0.01 for p in D.parameters())
    wgan_gp.after_d_update(D)                                             # WGAN-GP does not clip: no-op hook


# ---------------------------------------------------------------- BEGAN
def test_began_k_update_rule():
    k = began_k_update(torch.tensor(0.3), torch.tensor([0.4, 0.6]), torch.tensor([0.1, 0.3]), gamma=0.7, lambda_k=0.1)
    assert k.item() == pytest.approx(0.3 + 0.1 * (0.7 * 0.5 - 0.2))
    assert began_k_update(0.0, torch.tensor([0.]), torch.tensor([1.])).item() == 0          # clipped at 0
    assert began_k_update(0.999, torch.tensor([10.]), torch.tensor([0.]), lambda_k=1.).item() == 1  # clipped at 1


def test_began_hook_uses_the_latest_d_step():
    b = BEGAN(gamma=0.5, lambda_k=0.1)
    half = lambda x: 0.5 * x                                             # L1 energy = mean |x| / 2
    b.after_d_update(None)                                                 # nothing recorded: nothing changes
    assert b.k_t.item() == 0
    b.d_loss(half, torch.full((4, 3), 0.8), torch.full((4, 3), 0.2))     # energies 0.4, 0.1
    assert b.stats['k_t'].item() == 0
    assert b.stats['convergence'].item() == pytest.approx(0.4 + abs(0.5 * 0.4 - 0.1))
    assert b.d_loss(half, torch.full((4, 3), 0.8), torch.full((4, 3), 0.2)).item() == pytest.approx(0.4)   # k = 0
    b.after_d_update(None)
    assert b.k_t.item() == pytest.approx(0.01)
    b.after_d_update(None)                                                 # one update per d_loss
    assert b.k_t.item() == pytest.approx(0.01)
    assert b.d_loss(half, torch.full((4, 3), 0.8), torch.full((4, 3), 0.2)).item() == pytest.approx(0.4 - 0.01 * 0.1)
    assert b.g_loss(half, torch.full((4, 3), 0.2)).item() == pytest.approx(0.1)


def test_began_state_survives_a_checkpoint():
    b = BEGAN(); b.update_k(torch.tensor([1.]), torch.tensor([0.]))
    buffer = io.BytesIO(); torch.save({'loss': b.state_dict()}, buffer); buffer.seek(0)
    b2 = BEGAN(); b2.load_state_dict(torch.load(buffer)['loss'])
    assert b2.k_t.item() == pytest.approx(5e-4) and b2.state_dict()['k_t'].item() == pytest.approx(5e-4)
    with pytest.raises(ValueError, match='^state:'):
        b2.load_state_dict({'kt': 0.1})


def test_stateless_losses_have_empty_state():
    assert nsgan.state_dict() == {} and wgan.state_dict() == {}
    nsgan.load_state_dict({})
    with pytest.raises(ValueError, match='^state:'):
        wgan.load_state_dict({'k_t': 1.})


# ---------------------------------------------------------------- EBGAN
def test_pulling_away_against_a_double_loop():
    S = np.random.default_rng(0).normal(size=(7, 5))
    loop = sum((S[i] @ S[j] / (np.linalg.norm(S[i]) * np.linalg.norm(S[j]))) ** 2
               for i in range(7) for j in range(7) if i != j) / (7 * 6)
    assert pulling_away(torch.tensor(S)).item() == pytest.approx(loop, rel=1e-12)


def test_pulling_away_normalises_each_row_and_skips_the_diagonal():
    assert pulling_away(torch.eye(5)).item() == 0                     # with the diagonal: 1/(N-1)
    assert pulling_away(torch.ones(4, 3)).item() == pytest.approx(1)
    S = torch.randn(6, 4, dtype=torch.float64)
    scale = torch.tensor([1., 100., 0.01, 3., 1., 7.], dtype=torch.float64)[:, None]
    assert pulling_away(S * scale).item() == pytest.approx(pulling_away(S).item(), rel=1e-12)
    with pytest.raises(ValueError, match='^embeddings:'):
        pulling_away(torch.randn(1, 4))


def test_ebgan_losses_match_formula():
    recon = lambda x: (0.5 * x, x.flatten(1)[:, :2])                    # reconstruction, embedding
    real = torch.tensor([[1., 1.], [2., 0.]])                           # MSE energies 0.25, 0.5
    fake = torch.tensor([[4., 0.], [0., 0.2]])                          # MSE energies 2.0, 0.005
    e = EBGAN(margin=1., pt_weight=0.1)
    assert e.d_loss(recon, real, fake).item() == pytest.approx(0.375 + (0 + 0.995) / 2)
    pt = pulling_away(fake)
    assert e.g_loss(recon, fake).item() == pytest.approx((2.0 + 0.005) / 2 + 0.1 * pt.item())
    assert EBGAN(pt_weight=0).g_loss(lambda x: 0.5 * x, fake).item() == pytest.approx(1.0025)
    with pytest.raises(ValueError, match=r'^D\(fake\):.*embedding'):
        ebgan.g_loss(lambda x: 0.5 * x, fake)
    with pytest.raises(ValueError, match=r'^D\(real\):'):
        ebgan.d_loss(lambda x: x[:, :1], real, fake)


# ---------------------------------------------------------------- conditional losses
def test_cgan_passes_labels_and_refuses_bad_ones():
    calls = []
    def D(x, y): calls.append(y); return x[:, 0] + y
    real, fake, y, y_fake = torch.zeros(3, 2), torch.zeros(3, 2), torch.tensor([0, 1, 2]), torch.tensor([2, 2, 2])
    value = cgan.d_loss(D, real, fake, y=y, y_fake=y_fake)
    assert calls[0] is y and calls[1] is y_fake
    assert value.item() == pytest.approx(REFERENCE['gan'][0](np.array([0., 1, 2]), np.array([2., 2, 2])))
    with pytest.raises(ValueError, match='^y: .*conditional'):
        cgan.d_loss(D, real, fake)
    with pytest.raises(ValueError, match='^y: '):
        cgan.g_loss(D, fake)
    with pytest.raises(ValueError, match=r'^y: expected labels in \[0, 2\)'):
        CGAN(n_classes=2).d_loss(D, real, fake, y=y)
    with pytest.raises(ValueError, match='^y: expected an integer tensor'):
        cgan.d_loss(D, real, fake, y=y.float())
    with pytest.raises(ValueError, match=r'^y: expected an integer tensor of shape \(3,\)'):
        cgan.d_loss(D, real, fake, y=y[:2])
    with pytest.raises(ValueError, match='^y: expected labels >= 0'):
        cgan.g_loss(D, fake, y=torch.tensor([0, -1, 0]))


def log_softmax(z): return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_acgan_matches_formula_with_logits():
    adv_r, adv_f = np.array([1., -2., 0.5]), np.array([-1., 0., 3.])
    cls_r = np.array([[4., 0., -2.], [0., 3., 1.], [1., 1., 1.]])
    cls_f = np.array([[0., 0., 5.], [2., -1., 0.], [0., 9., 0.]])
    y, y_fake = np.array([0, 2, 1]), np.array([2, 0, 0])
    real, fake = torch.zeros(3, 1, dtype=torch.float64), torch.ones(3, 1, dtype=torch.float64)
    D = lambda x: (torch.tensor(adv_r if x[0, 0] == 0 else adv_f), torch.tensor(cls_r if x[0, 0] == 0 else cls_f))
    ce_r = -log_softmax(cls_r)[np.arange(3), y].mean()
    ce_f = -log_softmax(cls_f)[np.arange(3), y_fake].mean()
    d = acgan.d_loss(D, real, fake, y=torch.tensor(y), y_fake=torch.tensor(y_fake))
    assert d.item() == pytest.approx(REFERENCE['gan'][0](adv_r, adv_f) + ce_r + ce_f, rel=1e-12)
    assert acgan.stats['class_loss'].item() == pytest.approx(ce_r + ce_f)
    g = acgan.g_loss(D, fake, y=torch.tensor(y_fake))
    assert g.item() == pytest.approx(REFERENCE['nsgan'][1](adv_r, adv_f) + ce_f, rel=1e-12)


def test_acgan_refuses_bad_input():
    D = lambda x: (x[:, 0], torch.zeros(len(x), 4))
    real = fake = torch.zeros(3, 2)
    with pytest.raises(ValueError, match='^y: .*conditional'):
        acgan.d_loss(D, real, fake)
    with pytest.raises(ValueError, match=r'^y: expected labels in \[0, 4\)'):
        acgan.d_loss(D, real, fake, y=torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r'^y_fake: expected labels in \[0, 4\)'):
        acgan.d_loss(D, real, fake, y=torch.tensor([0, 1, 1]), y_fake=torch.tensor([0, 9, 1]))
    with pytest.raises(ValueError, match=r'^D\(real\): expected a pair'):
        acgan.d_loss(lambda x: x[:, 0], real, fake, y=torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match=r'^D\(real\)\[1\]:'):
        acgan.d_loss(lambda x: (x[:, 0], torch.zeros(3)), real, fake, y=torch.tensor([0, 1, 1]))


def test_infogan_matches_formula():
    info = InfoGAN(n_classes=3, n_continuous=2, lam=2., lam_cont=0.5)
    c = np.array([[0., 1., 0., 0.5, -1.], [1., 0., 0., 0.0, 0.3]])
    q = np.array([[1., 2., 0., 0.1, -0.5], [0.5, 0., -1., 0.2, 0.3]])
    adv_r, adv_f = np.array([0.3, -0.2]), np.array([1.5, -0.7])
    D = lambda x: (torch.tensor(adv_r if x[0, 0] == 0 else adv_f), torch.tensor(q))
    real, fake = torch.zeros(2, 1, dtype=torch.float64), torch.ones(2, 1, dtype=torch.float64)
    nll = -log_softmax(q[:, :3])[np.arange(2), c[:, :3].argmax(1)].mean() + 0.5 * 0.5 * ((q[:, 3:] - c[:, 3:]) ** 2).sum(1).mean()
    d = info.d_loss(D, real, fake, c=torch.tensor(c))
    assert d.item() == pytest.approx(REFERENCE['gan'][0](adv_r, adv_f) + 2 * nll, rel=1e-12)
    g = info.g_loss(D, fake, c=torch.tensor(c))
    assert g.item() == pytest.approx(REFERENCE['nsgan'][1](adv_r, adv_f) + 2 * nll, rel=1e-12)
    assert info.stats['info_loss'].item() == pytest.approx(nll)


def test_infogan_refuses_bad_codes():
    info = InfoGAN(n_classes=2, n_continuous=1)
    D = lambda x: (x[:, 0], torch.zeros(len(x), 3))
    real = fake = torch.zeros(2, 2)
    good = torch.tensor([[1., 0., 0.2], [0., 1., 0.1]])
    info.d_loss(D, real, fake, c=good)
    with pytest.raises(ValueError, match='^c: .*conditional'):
        info.d_loss(D, real, fake)
    with pytest.raises(ValueError, match=r'^c: expected a float tensor of shape \(2, 3\)'):
        info.g_loss(D, fake, c=good[:, :2])
    with pytest.raises(ValueError, match='^c: expected one-hot'):
        info.g_loss(D, fake, c=torch.tensor([[1., 1., 0.2], [0., 1., 0.1]]))
    with pytest.raises(ValueError, match=r'^D\(fake\)\[1\]: expected Q outputs of shape \(2, 3\)'):
        info.g_loss(lambda x: (x[:, 0], torch.zeros(2, 5)), fake, c=good)


# ---------------------------------------------------------------- relativistic
def test_ragan_g_loss_uses_the_latest_real_batch():
    loss = RaGAN()
    with pytest.raises(ValueError, match='^real:'):
        loss.g_loss(first, as_batch(FK))
    loss.d_loss(first, as_batch(R), as_batch(FK))
    assert loss.g_loss(first, as_batch(FK)).item() == pytest.approx(REFERENCE['ragan'][1](R, FK), rel=1e-6)
    other = np.array([0., 0., 0., 0.])
    assert loss.g_loss(first, as_batch(FK), real=as_batch(other)).item() == pytest.approx(REFERENCE['ragan'][1](other, FK), rel=1e-6)
    assert loss.fresh()._last_real is None


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize('name', SCORE_LOSSES)
def test_shapes_that_do_not_match_name_the_argument(name):
    loss = get(name).fresh()
    with pytest.raises(ValueError, match=r'^fake: expected the shape of real \(4, 2\)'):
        loss.d_loss(first, torch.zeros(4, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r'^D\((real|x_hat)\): expected one raw score per sample'):  # penalties: x_hat
        loss.d_loss(lambda x: x, torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r'^D\((fake|real)\): expected one raw score per sample'):  # ragan scores real too
        loss.g_loss(lambda x: x, torch.zeros(4, 2), **({'real': torch.zeros(4, 2)} if name == 'ragan' else {}))
    with pytest.raises(ValueError, match='^real: expected a non-empty floating-point batch'):
        loss.d_loss(first, torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match='^real: expected a non-empty floating-point batch'):
        loss.d_loss(first, torch.zeros(4, 2, dtype=torch.long), torch.zeros(4, 2))
    with pytest.raises(ValueError, match='^real: expected a tensor'):
        loss.d_loss(first, [[0., 1.]], torch.zeros(1, 2))


def test_unconditional_losses_refuse_unknown_conditioning():
    with pytest.raises(TypeError, match="'c'"):
        nsgan.d_loss(first, torch.zeros(2, 2), torch.zeros(2, 2), c=torch.zeros(2, 3))


def test_score_losses_accept_labels_as_conditional_forms():
    D = lambda x, y: x[:, 0] * 0 + y.double()
    real = fake = torch.zeros(2, 1, dtype=torch.float64)
    value = wgan_gp.d_loss(D, real, fake, y=torch.tensor([1, 3]), y_fake=torch.tensor([0, 0]))
    assert value.item() == pytest.approx(0 - 2 + 10)                    # E D(fake) − E D(real) + λ (zero gradient)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_every_loss_runs_on_cuda():
    device = torch.device('cuda')
    for name in losses.names:
        torch.manual_seed(0)
        kind, cond = SETUP.get(name, ('score', {}))
        cond = {k: v.to(device) for k, v in cond.items()}
        loss, D, G = make_loss(name), ToyD(kind).to(device), nn.Linear(3, 2).to(device)
        d = loss.d_loss(D, torch.randn(4, 2, device=device), G(torch.randn(4, 3, device=device)), **cond)
        d.backward(); loss.after_d_update(D)
        g = loss.g_loss(D, G(torch.randn(4, 3, device=device)), **cond)
        g.backward(); loss.after_g_update(G)
        assert d.device.type == g.device.type == 'cuda' and torch.isfinite(d) and torch.isfinite(g), name
        assert all(v.device.type == 'cuda' for v in loss.stats.values()), name
        loss.load_state_dict(loss.state_dict())
