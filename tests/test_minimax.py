"Tests for ganlab.minimax: the optimal discriminator and the value V(D, G) of the GAN game."
import math
import numpy as np
import pytest
import torch
from scipy import integrate, stats
from ganlab.data import GaussianMixture, gaussian
from ganlab.minimax import optimal_discriminator, optimal_logit, value_function

X = torch.linspace(-20, 20, 40_001, dtype=torch.float64)


def value_at_optimum(p_data, p_g, x=X):
    return value_function(optimal_logit(p_data.log_prob(x), p_g.log_prob(x)), p_data.pdf(x), p_g.pdf(x), x)


def scipy_jsd(mean_p, std_p, mean_q, std_q):
    "JSD of two 1-D Gaussians by scipy quadrature, independent of ganlab."
    def integrand(t):
        lp, lq = stats.norm.logpdf(t, mean_p, std_p), stats.norm.logpdf(t, mean_q, std_q)
        lm = np.logaddexp(lp, lq) - np.log(2)
        return 0.5 * np.exp(lp) * (lp - lm) + 0.5 * np.exp(lq) * (lq - lm)
    return integrate.quad(integrand, -30, 30, points=[mean_p, mean_q], limit=500, epsabs=1e-13, epsrel=1e-13)[0]


def test_optimal_discriminator_values():
    d = optimal_discriminator([1., 0., 0., 3., 2.], [1., 2., 0., 1., 0.])
    assert d.tolist() == [0.5, 0., 0.5, 0.75, 1.]
    assert d.dtype == torch.float64


def test_optimal_discriminator_is_half_at_equality():
    p = GaussianMixture([-2., 2.], [0.5, 1.]).pdf(X)
    assert (optimal_discriminator(p, p) == 0.5).all()          # also where p underflows to 0


def test_optimal_logit_matches_probability():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1e-3, 2, 100), rng.uniform(1e-3, 2, 100)
    d = torch.sigmoid(optimal_logit(np.log(a), np.log(b)))
    assert torch.allclose(d, optimal_discriminator(a, b), atol=1e-14)
    assert optimal_logit([-math.inf], [-math.inf]).item() == 0
    assert optimal_logit([0.], [-math.inf]).item() == math.inf


def test_optimal_logit_passes_gradients():
    x = torch.tensor([0.3, -1.], dtype=torch.float64, requires_grad=True)
    logit = optimal_logit(gaussian(2., 1.).log_prob(x), gaussian(0., 1.).log_prob(x))   # = 2x - 2
    logit.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 2.))


def test_value_at_equality_is_minus_log_4():
    for p in (gaussian(0., 1.), GaussianMixture([-2., 2.], [0.5, 0.5])):
        assert value_at_optimum(p, p) == pytest.approx(-math.log(4), abs=1e-12)


@pytest.mark.parametrize('mean_p,std_p,mean_q,std_q', [(0., 1., 1.5, 0.7), (0., 1., 0., 3.), (-1., 0.5, 4., 1.)])
def test_value_at_optimum_is_jsd(mean_p, std_p, mean_q, std_q):
    v = value_at_optimum(gaussian(mean_p, std_p), gaussian(mean_q, std_q))
    assert v == pytest.approx(-math.log(4) + 2 * scipy_jsd(mean_p, std_p, mean_q, std_q), abs=1e-6)
    assert -math.log(4) <= v <= 0


def test_optimal_discriminator_maximises_value():
    p_data, p_g = GaussianMixture([-2., 2.], [0.5, 0.5]), gaussian(0., 1.5)
    x = torch.linspace(-12, 12, 4001, dtype=torch.float64)
    best = value_at_optimum(p_data, p_g, x)
    opt = optimal_logit(p_data.log_prob(x), p_g.log_prob(x))
    g = torch.Generator().manual_seed(0)
    for scale in (0.01, 0.3, 3.):
        other = opt + scale * torch.randn(len(x), generator=g, dtype=torch.float64)
        assert value_function(other, p_data.pdf(x), p_g.pdf(x), x) < best


def test_constant_half_discriminator_scores_minus_log_4_against_any_generator():
    p_data = gaussian(0., 1.)
    for p_g in (gaussian(3., 0.5), GaussianMixture([-4., 1.], [1., 2.])):
        assert value_function(torch.zeros_like(X), p_data.pdf(X), p_g.pdf(X), X) == pytest.approx(-math.log(4), abs=1e-10)


def test_value_ignores_infinite_logits_where_density_vanishes():
    x = torch.linspace(0, 1, 11, dtype=torch.float64)
    p_data = torch.where(x < 0.5, 2., 0.).double()
    p_g = torch.where(x >= 0.5, 2., 0.).double()
    logits = torch.where(x < 0.5, math.inf, -math.inf).double()    # a perfect discriminator on disjoint supports
    assert value_function(logits, p_data, p_g, x) == 0


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match='^p_data'): optimal_discriminator([-1., 1.], [1., 1.])
    with pytest.raises(ValueError, match='^p_g'): optimal_discriminator([1., 1.], [1., 1., 1.])
    with pytest.raises(ValueError, match='^log_p_g'): optimal_logit([0., 0.], [0.])
    x = torch.linspace(0, 1, 5)
    with pytest.raises(ValueError, match='^x'): value_function(torch.zeros(5), torch.ones(5), torch.ones(5), x.flip(0))
    with pytest.raises(ValueError, match='^logits'): value_function(torch.zeros(4), torch.ones(5), torch.ones(5), x)
    with pytest.raises(ValueError, match='^p_g'): value_function(torch.zeros(5), torch.ones(5), -torch.ones(5), x)
    with pytest.raises(ValueError, match='^p_data'): optimal_discriminator('abc', [1.])
