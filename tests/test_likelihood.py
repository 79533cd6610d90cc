"Tests for ganlab.likelihood: Monte Carlo log-likelihood (LogSumExp) and Parzen-window estimates."
import math
import pytest
import torch
from ganlab.data import GaussianMixture, ring
from ganlab.likelihood import mc_log_likelihood, parzen_bandwidth, parzen_log_likelihood


def test_mc_log_likelihood_is_log_mean_exp():
    values = torch.randn(7, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(mc_log_likelihood(values), values.exp().mean(0).log(), atol=1e-14)
    assert torch.allclose(mc_log_likelihood(values, dim=1), values.exp().mean(1).log(), atol=1e-14)
    assert mc_log_likelihood(torch.full((10,), -3.5, dtype=torch.float64)).item() == pytest.approx(-3.5, abs=1e-14)


def test_mc_log_likelihood_does_not_underflow():
    values = torch.tensor([-9000., -9001., -9002.], dtype=torch.float64)
    assert torch.log(torch.exp(values).mean()) == -math.inf
    expected = -9000 + math.log((1 + math.exp(-1) + math.exp(-2)) / 3)
    assert mc_log_likelihood(values).item() == pytest.approx(expected, abs=1e-10)


def test_importance_sampling_with_the_exact_posterior_is_exact():
    # z ~ N(0, 1), x | z ~ N(2z + 1, 0.5^2): x ~ N(1, 4.25); z | x ~ N(2(x-1)/4.25, 0.25/4.25)
    x = torch.tensor([0.3, 2., -1.], dtype=torch.float64)
    post = torch.distributions.Normal(2 * (x - 1) / 4.25, math.sqrt(0.25 / 4.25))
    z = post.sample((4,))                                                            # (4, 3)
    log_px_given_z = torch.distributions.Normal(2 * z + 1, 0.5).log_prob(x)
    log_prior = torch.distributions.Normal(0., 1.).log_prob(z)
    estimate = mc_log_likelihood(log_px_given_z, log_prior, post.log_prob(z))
    assert torch.allclose(estimate, torch.distributions.Normal(1., math.sqrt(4.25)).log_prob(x), atol=1e-12)


def test_prior_sampling_converges():
    gen = torch.Generator().manual_seed(0)
    x = torch.tensor([0.3, 2., -1.], dtype=torch.float64)
    z = torch.randn(400_000, 1, generator=gen, dtype=torch.float64)
    estimate = mc_log_likelihood(torch.distributions.Normal(2 * z + 1, 0.5).log_prob(x))
    assert torch.allclose(estimate, torch.distributions.Normal(1., math.sqrt(4.25)).log_prob(x), atol=0.01)


def test_parzen_single_sample_is_a_gaussian():
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    centre = torch.tensor([[0.5, -1., 2.]])
    gauss = torch.distributions.MultivariateNormal(centre[0].double(), 0.7**2 * torch.eye(3, dtype=torch.float64))
    assert torch.allclose(parzen_log_likelihood(centre, x, 0.7), gauss.log_prob(x), atol=1e-12)


def test_parzen_of_mode_centres_is_the_mixture_density():
    data = ring(8, radius=2., std=0.3)
    x, _ = data.sample(300, torch.Generator().manual_seed(0))
    assert torch.allclose(parzen_log_likelihood(data.centers, x, 0.3), data.log_prob(x), atol=1e-12)


def test_parzen_chunking_does_not_change_the_result():
    gen = torch.Generator().manual_seed(2)
    samples, x = torch.randn(50, 2, generator=gen), torch.randn(33, 2, generator=gen)
    assert torch.allclose(parzen_log_likelihood(samples, x, 0.4), parzen_log_likelihood(samples, x, 0.4, batch_size=5))


def test_parzen_bandwidth_recovers_the_kernel_width():
    data = GaussianMixture([[0., 0.], [3., 0.]], 0.25)
    validation, _ = data.sample(2000, torch.Generator().manual_seed(0))
    assert parzen_bandwidth(data.centers, validation, [0.1, 0.2, 0.25, 0.3, 0.5]) == 0.25


def test_bad_input_names_the_argument():
    s = torch.zeros(4, 2)
    with pytest.raises(ValueError, match='^bandwidth'): parzen_log_likelihood(s, s, 0.)
    with pytest.raises(ValueError, match='^x:'): parzen_log_likelihood(s, torch.zeros(3, 3), 1.)
    with pytest.raises(ValueError, match='^samples'): parzen_log_likelihood(torch.zeros(4), s, 1.)
    with pytest.raises(ValueError, match='^bandwidths'): parzen_bandwidth(s, s, [])
    with pytest.raises(ValueError, match='^log_proposal'): mc_log_likelihood(torch.zeros(3), log_prior=torch.zeros(3))
    with pytest.raises(ValueError, match='^log_px_given_z'): mc_log_likelihood([0., 1.])
