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
