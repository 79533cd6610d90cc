"Tests for ganlab.transport: exact Wasserstein-1 distances, the transport LP and its Kantorovich-Rubinstein dual."
import math
import matplotlib
matplotlib.use('Agg')
import numpy as np
import ot
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import jensenshannon
from ganlab.data import GaussianMixture, gaussian
from ganlab.transport import (compare_to_data, explore_distances, kantorovich_rubinstein_dual, optimal_transport,
                              plot_comparison, wasserstein1_1d, wasserstein1_grid, wasserstein1_samples)

RNG = np.random.default_rng(0)


def folded_normal_w1(m1, s1, m2, s2):
    "W1 between two 1-D Gaussians: E|alpha + beta Z| under the monotone coupling."
    alpha, beta = m2 - m1, abs(s2 - s1)
    if beta == 0: return abs(alpha)
    return beta * math.sqrt(2 / math.pi) * math.exp(-alpha**2 / (2 * beta**2)) + alpha * (1 - 2 * stats.norm.cdf(-alpha / beta))


def test_w1_1d_matches_scipy_and_pot():
    for _ in range(50):
        n, m = RNG.integers(1, 40, size=2)
        x, y = RNG.normal(size=n), RNG.standard_t(3, size=m)
        xw, yw = RNG.dirichlet(np.ones(n)), RNG.dirichlet(np.ones(m))
        assert wasserstein1_1d(x, y, xw, yw) == pytest.approx(stats.wasserstein_distance(x, y, xw, yw), abs=1e-12)
        assert wasserstein1_1d(x, y) == pytest.approx(ot.wasserstein_1d(x, y, p=1), abs=1e-9)


def test_w1_1d_closed_forms():
    x = RNG.normal(size=64)
    assert wasserstein1_1d(x, x) == 0
    assert wasserstein1_1d(x, x - 2.5) == pytest.approx(2.5, abs=1e-12)               # a shift moves by |c|
    y = RNG.exponential(size=64)
    assert wasserstein1_1d(x, y) == pytest.approx(np.abs(np.sort(x) - np.sort(y)).mean(), abs=1e-12)
    assert wasserstein1_1d(x, y) == pytest.approx(wasserstein1_1d(y, x), abs=1e-12)
    assert wasserstein1_1d([0.], [1., 3.], y_weights=[0.5, 0.5]) == pytest.approx(2.)


@pytest.mark.parametrize('m1,s1,m2,s2', [(0., 1., 3., 1.), (0., 1., 0.5, 2.), (-1., 0.3, 1., 1.5), (0., 1., 0., 1.)])
def test_w1_grid_matches_gaussian_closed_form(m1, s1, m2, s2):
    x = torch.linspace(-20, 20, 40_001, dtype=torch.float64)
    w1 = wasserstein1_grid(gaussian(m1, s1).pdf(x), gaussian(m2, s2).pdf(x), x)
    assert w1 == pytest.approx(folded_normal_w1(m1, s1, m2, s2), abs=1e-6)


def test_optimal_transport_matches_pot_and_has_the_right_marginals():
    for _ in range(10):
        n, m = RNG.integers(2, 15, size=2)
        a, b = RNG.dirichlet(np.ones(n)), RNG.dirichlet(np.ones(m))
        cost = RNG.random((n, m))
        value, plan = optimal_transport(a, b, cost)
        assert value == pytest.approx(ot.emd2(a, b, cost), abs=1e-9)
        assert (plan >= -1e-12).all()
        assert torch.allclose(plan.sum(1), torch.as_tensor(a), atol=1e-9) and torch.allclose(plan.sum(0), torch.as_tensor(b), atol=1e-9)


def test_kantorovich_rubinstein_dual_equals_primal():
    for _ in range(8):
        n, m = RNG.integers(2, 12, size=2)
        u, v = torch.as_tensor(RNG.random((n, 3))), torch.as_tensor(RNG.random((m, 3)))
        a, b = torch.as_tensor(RNG.dirichlet(np.ones(n))), torch.as_tensor(RNG.dirichlet(np.ones(m)))
        primal, _ = optimal_transport(a, b, torch.cdist(u, v))
        points = torch.cat([u, v])
        d = torch.cdist(points, points)
        dual, f = kantorovich_rubinstein_dual(torch.cat([a, torch.zeros(m, dtype=torch.float64)]),
                                              torch.cat([torch.zeros(n, dtype=torch.float64), b]), d)
        assert dual == pytest.approx(primal, abs=1e-6)
        assert (f[:, None] - f[None, :] <= d + 1e-9).all() and f[0] == 0


def test_w1_samples_exact_cases():
    x = torch.as_tensor(RNG.normal(size=(50, 2)))
    shift = torch.tensor([0.3, -0.4], dtype=torch.float64)
    assert wasserstein1_samples(x, x + shift) == pytest.approx(0.5, abs=1e-12)           # translation by v: ||v||
    assert wasserstein1_samples(x, x) == 0
    z = (torch.arange(100, dtype=torch.float64) + 0.5) / 100                              # the parallel lines
    for a in (-1.5, 0.2, 3.):
        lines = [torch.stack([torch.full_like(z, c), z], 1) for c in (0., a)]
        assert wasserstein1_samples(*lines) == pytest.approx(abs(a), abs=1e-12)


def test_w1_samples_matches_pot():
    for n, m in [(40, 40), (30, 45), (1, 7)]:
        x, y = RNG.normal(size=(n, 2)), RNG.normal(size=(m, 2)) + 1
        expected = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y, metric='euclidean'))
        assert wasserstein1_samples(x, y) == pytest.approx(expected, abs=1e-7)
    x, y = RNG.normal(size=30), RNG.normal(size=30)                                       # 1-D input
    assert wasserstein1_samples(x, y) == pytest.approx(wasserstein1_1d(x, y), abs=1e-12)


def test_compare_to_data_closed_forms():
    same = compare_to_data(0., 1.)
    assert (same['d_star'] == 0.5).all() and same['js'] == 0 and same['w1'] == 0 and same['kl'] == 0
    for c in (-3., 0.5, 2.):
        r = compare_to_data(c, 1.)
        assert r['w1'] == pytest.approx(abs(c), abs=1e-6) and r['kl'] == pytest.approx(c**2 / 2, abs=1e-6)
    r = compare_to_data(1., 2.)
    assert r['w1'] == pytest.approx(folded_normal_w1(0., 1., 1., 2.), abs=1e-5)   # trapezoidal CDFs, kink where F = G
    assert r['js'] == pytest.approx(jensenshannon(r['p_data'].numpy(), r['p_g'].numpy()) ** 2, abs=1e-9)
    assert math.log(2) - compare_to_data(9., 1.)['js'] < 1e-4 < math.log(2) - compare_to_data(3., 1.)['js']


def test_compare_to_data_with_mixture_and_plot():
    p_data = GaussianMixture([-2., 2.], [0.5, 0.5])
    r = compare_to_data(1.5, 0.8, p_data)
    assert r['x'].shape == r['p_data'].shape == r['p_g'].shape == r['d_star'].shape
    assert ((r['d_star'] >= 0) & (r['d_star'] <= 1)).all() and 0 < r['js'] < math.log(2) and r['w1'] > 0
    fig = plot_comparison(r, p_data)
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt; plt.close(fig)


def test_explore_distances_builds_two_sliders():
    import matplotlib.pyplot as plt
    w = explore_distances()
    sliders = [c for c in w.widget.children if hasattr(c, 'min')]
    assert [s.description for s in sliders] == ['mean of p_g', 'std of p_g'] and sliders[1].min > 0
    plt.close('all')


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match='^x_weights'): wasserstein1_1d([0., 1.], [0.], x_weights=[0.5, 0.6])
    with pytest.raises(ValueError, match='^x:'): wasserstein1_1d(np.zeros((3, 2)), [0.])
    with pytest.raises(ValueError, match='^q:'): wasserstein1_grid(np.ones(5), np.ones(4), np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match='^cost'): optimal_transport([0.5, 0.5], [1.], np.ones((2, 2)))
    with pytest.raises(ValueError, match='^a:'): optimal_transport([0.5, 0.6], [1.], np.ones((2, 1)))
    with pytest.raises(ValueError, match='^distance'): kantorovich_rubinstein_dual([0.5, 0.5], [1., 0.], [[0., 1.], [2., 0.]])
    with pytest.raises(ValueError, match='^b:'): kantorovich_rubinstein_dual([0.5, 0.5], [1.], [[0., 1.], [1., 0.]])
    with pytest.raises(ValueError, match='^y:'): wasserstein1_samples(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match='^std_g'): compare_to_data(0., 0.)
    with pytest.raises(ValueError, match='^mean_g'): compare_to_data(math.nan, 1.)
    with pytest.raises(ValueError, match='^p_data'): compare_to_data(0., 1., GaussianMixture([[0., 0.]], 1.))
