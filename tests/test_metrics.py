import math, pytest, torch
from ganlab.metrics import mode_coverage
from ganlab.data import ring, grid

def test_perfect_and_collapsed_generators():
    r = ring()
    m = mode_coverage(r.centers.repeat(5, 1), r.centers, r.std)
    assert (m['modes'], m['n_modes'], m['high_quality'], m['counts']) == (8, 8, 1.0, [5] * 8) and abs(m['reverse_kl']) < 1e-12
    m = mode_coverage(r.centers[[2]].repeat(40, 1), r.centers, r.std)
    assert m['modes'] == 1 and m['counts'][2] == 40 and abs(m['reverse_kl'] - math.log(8)) < 1e-12

def test_three_sigma_boundary_and_hand_computed_kl():
    g = grid(); c = g.centers
    # 3 samples near mode 0 (one of them 3.2 sigma away, so low quality), 1 near mode 1
    s = torch.stack([c[0], c[0] + torch.tensor([0., 2.9 * g.std]), c[0] + torch.tensor([3.2 * g.std, 0.]), c[1]])
    m = mode_coverage(s, c, g.std)
    assert m['modes'] == 2 and m['high_quality'] == 0.75
    q = torch.tensor([2 / 3, 1 / 3], dtype=torch.float64)
    assert abs(m['reverse_kl'] - float((q * (q * 25).log()).sum())) < 1e-12

def test_nothing_high_quality():
    r = ring(); m = mode_coverage(torch.zeros(10, 2), r.centers, r.std)
    assert m['modes'] == 0 and m['high_quality'] == 0 and m['reverse_kl'] == math.inf

def test_bad_input():
    r = ring()
    with pytest.raises(ValueError, match=r'^samples: expected shape \(N, 2\)'): mode_coverage(torch.zeros(3, 3), r.centers, r.std)
    with pytest.raises(ValueError, match='^samples: expected finite values'): mode_coverage(torch.full((3, 2), float('nan')), r.centers, r.std)
    with pytest.raises(ValueError, match='^std/n_sigma'): mode_coverage(torch.zeros(3, 2), r.centers, 0.)

# ---------------------------------------------------------------------------------------------------
# Image metrics: Fréchet distance / FID, KID, Inception Score, precision/recall, density/coverage,
# Stacked MNIST modes, Parzen windows. Oracles: closed forms, pytorch-fid, torchmetrics, scipy.
import warnings
import numpy as np
from scipy import linalg
from scipy.spatial.distance import cdist as scipy_cdist
from pytorch_fid.fid_score import calculate_frechet_distance
from ganlab.metrics import (frechet_distance, fid_from_features, feature_statistics, FeatureStats, kid, mmd2_unbiased,
                            inception_score, precision_recall, density_coverage, prdc, stacked_mnist_modes, parzen_log_likelihood)

def _gen(seed): return torch.Generator().manual_seed(seed)

def _random_stats(d, n, seed, scale=1.0, shift=0.0):
    g = _gen(seed)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    x = scale * torch.randn(n, d, generator=g, dtype=torch.float64) @ mix + shift
    return x.mean(0), x.T.cov()

def _pytorch_fid(m1, s1, m2, s2):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')        # scipy's deprecation of sqrtm(disp=...)
        return calculate_frechet_distance(*(np.asarray(t, dtype=np.float64) for t in (m1, s1, m2, s2)))

def test_frechet_closed_forms():
    assert abs(frechet_distance([0.], [[1.]], [0.], [[3.]]) - (4 - 2 * math.sqrt(3))) < 1e-14
    assert abs(frechet_distance([1., 2.], torch.eye(2), [4., 6.], torch.eye(2)) - 25.) < 1e-12
    a, b = torch.tensor([1., 4., 9.]), torch.tensor([4., 1., 16.])
    assert abs(frechet_distance(torch.zeros(3), a.diag(), torch.zeros(3), b.diag()) - 3.) < 1e-12   # (1-2)² + (2-1)² + (3-4)²
    mu, sigma = _random_stats(8, 50, 0)
    assert abs(frechet_distance(mu, sigma, mu, 4 * sigma) - float(sigma.trace())) < 1e-10           # (1 - 2)² tr Σ
    assert frechet_distance(mu, sigma, mu, sigma) < 1e-10

@pytest.mark.parametrize('d', [2, 16, 128])          # (pytorch-fid itself fails on 1×1 with scipy 1.17)
def test_frechet_matches_pytorch_fid(d):
    (m1, s1), (m2, s2) = _random_stats(d, 4 * d + 10, d), _random_stats(d, 3 * d + 20, d + 1, scale=1.5, shift=0.3)
    ours, ref = frechet_distance(m1, s1, m2, s2), _pytorch_fid(m1, s1, m2, s2)
    assert isinstance(ours, float) and abs(ours - ref) <= 1e-5 * abs(ref)
    scipy_value = float((m1 - m2).square().sum() + s1.trace() + s2.trace()) - 2 * np.trace(linalg.sqrtm(s1.numpy() @ s2.numpy())).real
    assert abs(ours - scipy_value) <= 1e-8 * abs(ours)

@pytest.mark.parametrize('n', [5, 20, 64])
def test_singular_covariances_warn_and_match_pytorch_fid(n):
    "Fewer samples than dimensions (64): singular covariance, a warning, a real number, pytorch-fid's value."
    (m1, s1), (m2, s2) = _random_stats(64, n, 7), _random_stats(64, 200, 8, shift=0.1)
    with pytest.warns(UserWarning, match='sigma1 is singular or nearly so'):
        ours = frechet_distance(m1, s1, m2, s2)
    assert isinstance(ours, float) and abs(ours - _pytorch_fid(m1, s1, m2, s2)) <= 1e-5 * ours

def test_near_singular_covariance_warns_and_matches_pytorch_fid():
    g = _gen(3)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))
    s1 = q @ torch.cat([torch.rand(9, generator=g, dtype=torch.float64) + 0.5, torch.tensor([1e-13], dtype=torch.float64)]).diag() @ q.T
    m2, s2 = _random_stats(10, 100, 4)
    with pytest.warns(UserWarning, match=r'1 of its 10 eigenvalues'):
        ours = frechet_distance(torch.zeros(10), s1, m2, s2)
    assert abs(ours - _pytorch_fid(torch.zeros(10), s1, m2, s2)) <= 1e-5 * ours
    with warnings.catch_warnings():
        warnings.simplefilter('error')                     # a well-conditioned pair raises no warning
        frechet_distance(m2, s2, m2, 2 * s2)

def test_eps_fallback_when_the_eigendecomposition_fails(monkeypatch):
    (m1, s1), (m2, s2) = _random_stats(6, 40, 5), _random_stats(6, 40, 6)
    real_eigvalsh, calls = torch.linalg.eigvalsh, []
    def flaky(m):
        calls.append(1)
        if len(calls) == 1: raise torch.linalg.LinAlgError('did not converge')
        return real_eigvalsh(m)
    monkeypatch.setattr(torch.linalg, 'eigvalsh', flaky)
    with pytest.warns(UserWarning, match='adding 1e-06 to the diagonal'):
        ours = frechet_distance(m1, s1, m2, s2)
    eye = 1e-6 * np.eye(6)
    assert len(calls) == 2 and abs(ours - _pytorch_fid(m1, s1.numpy() + eye, m2, s2.numpy() + eye)) <= 1e-9 * ours

def test_frechet_bad_input():
    mu, sigma = _random_stats(4, 30, 0)
    with pytest.raises(ValueError, match=r'^mu2: expected a mean vector of shape \(4,\)'): frechet_distance(mu, sigma, mu[:3], sigma[:3, :3])
    with pytest.raises(ValueError, match=r'^sigma2: expected a \(4, 4\) covariance'): frechet_distance(mu, sigma, mu, sigma[:3, :3])
    with pytest.raises(ValueError, match='^mu1: expected finite values'): frechet_distance(mu + float('nan'), sigma, mu, sigma)
    with pytest.raises(ValueError, match='^sigma1: expected finite values'): frechet_distance(mu, sigma * float('nan'), mu, sigma)
    with pytest.raises(ValueError, match='^sigma1: expected a symmetric matrix'): frechet_distance(mu, sigma + torch.triu(torch.ones(4, 4), 1), mu, sigma)
    with pytest.raises(ValueError, match='^sigma2: expected a positive semi-definite'): frechet_distance(mu, sigma, mu, -sigma)

def test_frechet_refuses_scalars_and_other_argument_orders():
    "Issue 17: scalars in the order (mu1, mu2, sigma1, sigma2) gave 1.07 silently; the distance is 10."
    assert abs(frechet_distance([0.], [[1.]], [3.], [[4.]]) - 10.) < 1e-12          # 3² + 1 + 4 − 2√4
    with pytest.raises(ValueError, match=r'^mu1: expected a mean vector of shape \(d,\), got \(\)'):
        frechet_distance(0., 3., 1., 4.)
    with pytest.raises(ValueError, match=r'^mu2: expected a mean vector of shape \(1,\), got \(\)'):
        frechet_distance([0.], [[1.]], 3., [[4.]])
    with pytest.raises(ValueError, match=r'^sigma1: expected a \(1, 1\) covariance matrix .*, got \(\)'):
        frechet_distance([0.], 1., [3.], [[4.]])
    with pytest.raises(ValueError, match=r'^sigma1: expected a \(1, 1\) covariance matrix .*, got \(1,\)'):
        frechet_distance([0.], [3.], [1.], [[4.]])                               # (mu1, mu2, sigma1, sigma2)
    with pytest.raises(ValueError, match=r'^mu1: expected a mean vector of shape \(d,\), got \(2, 1\)'):
        frechet_distance(torch.zeros(2, 1), torch.eye(2), torch.zeros(2), torch.eye(2))

def test_fid_mean_term_bias_is_two_trace_sigma_over_n():
    "E|mean1 - mean2|² = 2 Tr(Σ)/N for two samples of N rows from N(μ, Σ) (2d/N only when Σ = I)."
    g = _gen(5)
    d, n, reps = 8, 20, 20000
    L = torch.randn(d, d, generator=g, dtype=torch.float64) * 0.5
    trace = (L @ L.T).trace().item()
    x = torch.randn(reps, n, d, generator=g, dtype=torch.float64) @ L.T
    y = torch.randn(reps, n, d, generator=g, dtype=torch.float64) @ L.T
    mean_term = (x.mean(1) - y.mean(1)).square().sum(1)
    se = mean_term.std().item() / reps ** 0.5
    assert abs(mean_term.mean().item() - 2 * trace / n) < 4 * se
    assert abs(mean_term.mean().item() - 2 * d / n) > 20 * se

def test_feature_statistics_stream_and_fid_from_features():
    g = _gen(11)
    x = torch.randn(1003, 12, generator=g, dtype=torch.float64) * 3 + 1
    stats = FeatureStats()
    for batch in x.split(97): stats.update(batch.float())          # float32 batches are accumulated in float64
    mu, sigma = feature_statistics(x.float())
    assert stats.n == 1003 and torch.allclose(stats.mu, mu, atol=1e-12) and torch.allclose(stats.sigma, sigma, atol=1e-10)
    assert np.allclose(sigma.numpy(), np.cov(x.float().double().numpy(), rowvar=False), atol=1e-10)
    y = torch.randn(500, 12, generator=g, dtype=torch.float64)
    ref = _pytorch_fid(x.mean(0), np.cov(x.numpy(), rowvar=False), y.mean(0), np.cov(y.numpy(), rowvar=False))
    assert abs(fid_from_features(x, y) - ref) <= 1e-9 * ref
    with pytest.raises(ValueError, match='^batch: expected 12 features per row'): stats.update(torch.zeros(3, 5))
    with pytest.raises(ValueError, match='^FeatureStats: expected at least 2 samples'): FeatureStats().update(torch.zeros(1, 3)).sigma

def test_fid_from_features_bad_input():
    x = torch.randn(50, 4)
    with pytest.raises(ValueError, match='^features2: expected 4 feature dimensions like features1, got 5'): fid_from_features(x, torch.randn(50, 5))
    with pytest.raises(ValueError, match="^features1: expected finite values, got '1 NaN or inf entries'"):
        fid_from_features(x.index_put((torch.tensor([3]), torch.tensor([1])), torch.tensor(float('nan'))), x)
    with pytest.raises(ValueError, match='^features1: expected at least 2 samples'): fid_from_features(x[:1], x)
    with pytest.raises(ValueError, match=r'^features1: expected a 2-D array'): fid_from_features(x[0], x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        value = fid_from_features(torch.randn(3, 4), x)             # 3 samples of 4-d features: one clear warning
    assert len(caught) == 1 and 'features1: 3 samples of 4-dimensional features' in str(caught[0].message)
    assert isinstance(value, float) and value > 0

def test_kid_by_hand_and_against_torchmetrics():
    from torchmetrics.image.kid import KernelInceptionDistance, poly_mmd
    assert mmd2_unbiased(torch.tensor([[0.], [1.]]), torch.tensor([[2.], [3.]])) == 297.5
    g = _gen(12)
    real, fake = torch.randn(200, 16, generator=g, dtype=torch.float64), torch.randn(200, 16, generator=g, dtype=torch.float64) * 1.2 + 0.2
    tm = KernelInceptionDistance(feature=torch.nn.Identity(), subsets=4, subset_size=200)
    tm.update(real, real=True); tm.update(fake, real=False)
    mean, std = kid(real, fake, subsets=4, subset_size=200)
    assert abs(mean - float(tm.compute()[0])) <= 1e-12 * abs(mean) and std < 1e-12
    # random subsets: the mean of torchmetrics' MMD on the same subsets; std is the population std
    mean, std = kid(real, fake, subsets=5, subset_size=50, seed=3)
    gen, scores = _gen(3), []
    for _ in range(5):
        i, j = torch.randperm(200, generator=gen)[:50], torch.randperm(200, generator=gen)[:50]
        scores.append(float(poly_mmd(real[i], fake[j])))
    assert abs(mean - np.mean(scores)) < 1e-12 and abs(std - np.std(scores)) < 1e-12

def test_kid_unequal_sizes_brute_force():
    g = _gen(13)
    x, y = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    k = lambda a, b: (float(a @ b) / 3 + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    assert abs(mmd2_unbiased(x, y) - (xx + yy - 2 * xy)) < 1e-12
    gen = _gen(0)                                  # subset_size is capped at the smaller set (5)
    i, j = torch.randperm(7, generator=gen)[:5], torch.randperm(5, generator=gen)
    assert kid(x, y, subsets=1, subset_size=1000) == (mmd2_unbiased(x[i], y[j]), 0.)

def test_kid_bad_input():
    x = torch.randn(20, 4)
    with pytest.raises(ValueError, match='^fake: expected 4 feature dimensions like real, got 3'): kid(x, torch.randn(20, 3))
    with pytest.raises(ValueError, match='^real: expected finite values'): kid(x * float('inf'), x)
    with pytest.raises(ValueError, match='^subset_size: expected an integer >= 2'): kid(x, x, subset_size=1)

@pytest.mark.parametrize('K,splits', [(2, 1), (10, 10), (7, 3)])
def test_inception_score_closed_forms(K, splits):
    assert inception_score(torch.full((42 * K, K), 1 / K), splits) == (1.0, 0.0)
    mean, std = inception_score(torch.eye(K).repeat(splits * 4, 1), splits)     # each split uses every class 4 times
    assert abs(mean - K) < 1e-12 and std < 1e-12

def test_inception_score_by_hand_and_against_the_original_formula():
    assert abs(inception_score(torch.tensor([[1., 0.], [0.5, 0.5]]), splits=1)[0] - (4 / 3) ** 0.75) < 1e-12
    probs = torch.distributions.Dirichlet(torch.full((10,), 0.2)).sample((1000,)).double()
    scores = []                                   # Salimans et al.'s numpy code, on equal parts
    for part in np.split(probs.numpy(), 10):
        py = part.mean(0, keepdims=True)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(py)), 1))))
    mean, std = inception_score(probs, splits=10)
    assert abs(mean - np.mean(scores)) < 1e-10 and abs(std - np.std(scores)) < 1e-10

def test_inception_score_bad_input():
    with pytest.raises(ValueError, match=r'^probs: expected non-negative probabilities \(apply softmax'): inception_score(torch.randn(20, 10))
    with pytest.raises(ValueError, match='^probs: expected rows summing to 1'): inception_score(torch.rand(20, 10))
    with pytest.raises(ValueError, match='^splits: expected an integer from 1 to the number of samples 20'): inception_score(torch.full((20, 2), .5), splits=21)
    with pytest.raises(ValueError, match='^probs: expected finite values'): inception_score(torch.full((20, 2), float('nan')))

def _two_clusters(n=150, seed=0):
    g = _gen(seed)
    left = torch.randn(n, 2, generator=g, dtype=torch.float64) * .5 - torch.tensor([5., 0.], dtype=torch.float64)
    right = torch.randn(n, 2, generator=g, dtype=torch.float64) * .5 + torch.tensor([5., 0.], dtype=torch.float64)
    return left, right, torch.cat([left, right])

def test_precision_recall_density_coverage_exact_cases():
    left, _, real = _two_clusters()
    assert precision_recall(real, real) == dict(precision=1., recall=1.)
    assert density_coverage(real, real) == dict(density=1., coverage=1.)                  # open balls: exactly 1
    assert precision_recall(real, left) == dict(precision=1., recall=.5)
    assert density_coverage(real, left) == dict(density=1., coverage=.5)
    assert prdc(real, real + 50.) == dict(precision=0., recall=0., density=0., coverage=0.)
    # one generated outlier in the missing cluster: recall jumps to 1, coverage barely moves
    plus = torch.cat([left, torch.tensor([[5., 0.]], dtype=torch.float64)])
    assert precision_recall(real, plus)['recall'] == 1. and density_coverage(real, plus)['coverage'] < .6

def _prdc_reference(real, fake, k_pr, k_dc):
    "From the papers' definitions with scipy's distances (as the authors' prdc package computes them)."
    rr, ff, rf = scipy_cdist(real, real), scipy_cdist(fake, fake), scipy_cdist(real, fake)
    r_pr, r_dc, f_pr = np.sort(rr, 1)[:, k_pr], np.sort(rr, 1)[:, k_dc], np.sort(ff, 1)[:, k_pr]
    return dict(precision=(rf <= r_pr[:, None]).any(0).mean(), recall=(rf <= f_pr[None, :]).any(1).mean(),
                density=(rf < r_dc[:, None]).sum() / (k_dc * len(fake)), coverage=(rf.min(1) < r_dc).mean())

@pytest.mark.parametrize('k_pr,k_dc,batch', [(3, 5, 1000), (1, 2, 37), (5, 10, 64)])
def test_prdc_matches_a_reference(k_pr, k_dc, batch):
    g = _gen(k_pr + k_dc)
    real, fake = torch.randn(400, 6, generator=g, dtype=torch.float64), torch.randn(300, 6, generator=g, dtype=torch.float64) * 1.3 + .2
    ours, ref = prdc(real, fake, k_pr, k_dc, batch_size=batch), _prdc_reference(real.numpy(), fake.numpy(), k_pr, k_dc)
    assert all(abs(ours[key] - ref[key]) < 1e-12 for key in ref), (ours, ref)
    assert precision_recall(real, fake, k_pr) == {k: ours[k] for k in ('precision', 'recall')}

def test_prdc_bad_input():
    x = torch.randn(10, 3)
    with pytest.raises(ValueError, match='^real: expected more than k = 5 samples'): density_coverage(x[:5], x)
    with pytest.raises(ValueError, match='^fake: expected 3 feature dimensions like real'): precision_recall(x, torch.randn(10, 2))
    with pytest.raises(ValueError, match='^k_pr: expected a positive integer'): precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match='^fake: expected finite values'): precision_recall(x, x * float('nan'))

def test_stacked_mnist_modes():
    triples = torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))
    assert stacked_mnist_modes(triples) == dict(modes=1000, n_modes=1000, kl=0.)
    m = stacked_mnist_modes(torch.tensor([[9, 9, 9]] * 10))
    assert m['modes'] == 1 and abs(m['kl'] - math.log(1000)) < 1e-12
    m = stacked_mnist_modes(torch.tensor([[0, 0, 1]] * 3 + [[0, 0, 2]]))
    assert m['modes'] == 2 and abs(m['kl'] - (.75 * math.log(750) + .25 * math.log(250))) < 1e-12
    p = torch.zeros(1000, dtype=torch.float64); p[[1, 2]] = torch.tensor([.75, .25], dtype=torch.float64)
    assert abs(stacked_mnist_modes(torch.tensor([[0, 0, 1]] * 3 + [[0, 0, 2]]), weights=p)['kl']) < 1e-12
    assert stacked_mnist_modes(torch.tensor([[0, 0, 3]]), weights=p)['kl'] == math.inf

def test_stacked_mnist_modes_bad_input():
    with pytest.raises(ValueError, match=r'^digits: expected shape \(N, 3\)'): stacked_mnist_modes(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='^digits: expected integer class predictions'): stacked_mnist_modes(torch.zeros(4, 3))
    with pytest.raises(ValueError, match='^digits: expected digits in 0..9'): stacked_mnist_modes(torch.tensor([[0, 10, 1]]))
    with pytest.raises(ValueError, match='^weights: expected 1000 non-negative probabilities'): stacked_mnist_modes(torch.zeros(1, 3, dtype=torch.long), weights=torch.ones(10) / 10)

def test_parzen_window_closed_form_and_bad_input():
    g = _gen(14)
    s, x = torch.randn(1, 4, generator=g, dtype=torch.float64), torch.randn(9, 4, generator=g, dtype=torch.float64)
    exact = torch.distributions.MultivariateNormal(s[0], 0.5 ** 2 * torch.eye(4, dtype=torch.float64)).log_prob(x).mean()
    assert abs(parzen_log_likelihood(s, x, 0.5, batch_size=4) - float(exact)) < 1e-10
    two = torch.cat([s, s])                       # two identical samples: the same density
    assert abs(parzen_log_likelihood(two, x, 0.5) - float(exact)) < 1e-10
    assert parzen_log_likelihood(s, x, [0.5, 0.5]) == [parzen_log_likelihood(s, x, 0.5)] * 2
    with pytest.raises(ValueError, match='^bandwidth: expected a positive number'): parzen_log_likelihood(s, x, 0.)
    with pytest.raises(ValueError, match='^bandwidth: expected a positive number'): parzen_log_likelihood(s, x, [1., -1.])
    with pytest.raises(ValueError, match='^x: expected 4 dimensions like samples'): parzen_log_likelihood(s, x[:, :2], 1.)
