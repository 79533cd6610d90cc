"Tests for ganlab.divergences: KL and Jensen-Shannon divergences, against closed forms and SciPy."
import math
import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import jensenshannon
from ganlab.data import gaussian
from ganlab.divergences import js_divergence, kl_divergence, kl_gaussians

RNG = np.random.default_rng(0)
PAIRS = [(RNG.dirichlet(np.ones(k) * 0.7), RNG.dirichlet(np.ones(k) * 0.7)) for k in RNG.integers(2, 12, size=200)]
X = torch.linspace(-15, 15, 30_001, dtype=torch.float64)


def test_kl_matches_scipy_entropy():
    for p, q in PAIRS:
        assert kl_divergence(p, q).item() == pytest.approx(stats.entropy(p, q), abs=1e-12)


def test_kl_is_non_negative_and_zero_only_at_equality():
    for p, q in PAIRS:
        assert kl_divergence(p, q).item() > 0
        assert kl_divergence(p, p).item() == 0


def test_kl_support_rules():
    assert kl_divergence([0.5, 0.5, 0.], [0.25, 0.25, 0.5]).item() == pytest.approx(math.log(2), abs=1e-15)
    assert kl_divergence([0.25, 0.25, 0.5], [0.5, 0.5, 0.]).item() == math.inf


@pytest.mark.parametrize('mp,sp,mq,sq', [(0., 1., 1.5, 0.7), (-1., 0.5, 2., 3.), (2., 1., 2., 1.)])
def test_kl_gaussians_closed_form_matches_quadrature(mp, sp, mq, sq):
    grid = kl_divergence(gaussian(mp, sp).pdf(X), gaussian(mq, sq).pdf(X), x=X).item()
    assert kl_gaussians(mp, sp, mq, sq).item() == pytest.approx(grid, abs=1e-9)


def test_kl_gaussians_special_values():
    assert kl_gaussians(0., 1., 0., 1.).item() == 0
    assert kl_gaussians(0., 1., 3., 1.).item() == pytest.approx(4.5, abs=1e-15)         # d^2 / 2
    assert kl_gaussians(0., 1., 0., 2.).item() == pytest.approx(math.log(2) + 1 / 8 - 0.5, abs=1e-15)
    assert torch.allclose(kl_gaussians(torch.zeros(3), 1., torch.arange(3.), 1.), torch.arange(3.).double()**2 / 2)


def test_js_matches_scipy_distance_squared():
    for p, q in PAIRS:
        js = js_divergence(p, q).item()
        assert js == pytest.approx(jensenshannon(p, q) ** 2, abs=1e-12)               # scipy returns sqrt(JS), nats
        assert js / math.log(2) == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)   # ... or bits with base=2


def test_js_symmetric_and_bounded():
    for p, q in PAIRS:
        js = js_divergence(p, q).item()
        assert js == js_divergence(q, p).item() and 0 < js < math.log(2)
        assert js_divergence(p, p).item() == 0


def test_js_is_log_2_exactly_for_disjoint_supports():
    p, q = [0.3, 0.7, 0., 0.], [0., 0., 0.1, 0.9]
    assert js_divergence(p, q).item() == pytest.approx(math.log(2), abs=1e-15)
    assert (kl_divergence(p, q) + kl_divergence(q, p)).item() == math.inf


def test_densities_on_a_grid():
    a, b = gaussian(0., 1.), gaussian(1.5, 0.7)
    js = js_divergence(a.pdf(X), b.pdf(X), x=X).item()
    assert js == pytest.approx(jensenshannon(a.pdf(X).numpy(), b.pdf(X).numpy()) ** 2, abs=1e-9)


def test_batched_along_dim():
    p = torch.as_tensor(np.stack([pq[0] for pq in PAIRS if len(pq[0]) == 5]))
    q = torch.as_tensor(np.stack([pq[1] for pq in PAIRS if len(pq[1]) == 5]))
    batched = kl_divergence(p, q)
    assert batched.shape == (len(p),)
    assert torch.allclose(batched, torch.stack([kl_divergence(a, b) for a, b in zip(p, q)]))
    assert torch.allclose(js_divergence(p.T, q.T, dim=0), js_divergence(p, q))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match='^p:'): kl_divergence([2., 1.], [0.5, 0.5])          # counts, not probabilities
    with pytest.raises(ValueError, match='^q:'): js_divergence([0.5, 0.5], [1.5, -0.5])
    with pytest.raises(ValueError, match='^q:'): kl_divergence([0.5, 0.5], [0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match='^x:'): kl_divergence(torch.ones(5), torch.ones(5), x=torch.linspace(0, 1, 4))
    with pytest.raises(ValueError, match='^std_p'): kl_gaussians(0., 0., 0., 1.)
    with pytest.raises(ValueError, match='^std_q'): kl_gaussians(0., 1., 0., -1.)
