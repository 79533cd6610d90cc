"""ganlab.latent: lerp and slerp against closed forms, interpolation paths and grids, latent arithmetic,
classifier-guided editing on a hand-built generator and classifier whose answer is known, the edit's
side-effect measure, code purity, the binomial helpers, stored generators, and bad input (one line naming
the argument)."""
import json
import math
import pytest
import torch
from torch import nn
from ganlab import latent
from ganlab.latent import (lerp, slerp, latent_path, interpolate, grid_latents, interpolation_grid,
                           latent_arithmetic,
                           edit_along_classifier, edit_effect, code_purity, binomial_tail, wilson_interval)


def gaussian(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_lerp_and_slerp_endpoints_are_exact():
    z0, z1 = gaussian(7, 30), gaussian(7, 30, seed=1)
    for fn in (lerp, slerp):
        path = fn(z0, z1, torch.tensor([0.0, 1.0], dtype=torch.float64))
        assert path.shape == (2, 7, 30)
        torch.testing.assert_close(path[0], z0, rtol=0, atol=1e-12)
        torch.testing.assert_close(path[1], z1, rtol=0, atol=1e-12)
    torch.testing.assert_close(lerp(z0, z1, 0.25), 0.75 * z0 + 0.25 * z1)


def test_slerp_keeps_unit_norm_and_matches_the_rotation_formula():
    a = torch.nn.functional.normalize(gaussian(20, 12), dim=1)
    b = torch.nn.functional.normalize(gaussian(20, 12, seed=1), dim=1)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    path = slerp(a, b, t)
    torch.testing.assert_close(path.norm(dim=-1), torch.ones(11, 20, dtype=torch.float64), rtol=0, atol=1e-12)
    # independent formula: rotate a toward the unit vector v orthogonal to it in the plane of a and b
    cos = (a * b).sum(1, keepdim=True)
    omega = torch.acos(cos)
    v = torch.nn.functional.normalize(b - cos * a, dim=1)
    rotation = torch.cos(t[:, None, None] * omega) * a + torch.sin(t[:, None, None] * omega) * v
    torch.testing.assert_close(path, rotation, rtol=0, atol=1e-10)


def test_slerp_of_equal_norm_vectors_keeps_their_norm_and_the_quarter_circle():
    e1, e2 = torch.tensor([3.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(slerp(e1, e2, 1 / 3),
                               3 * torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)],
                                                                      dtype=torch.float64))


def test_lerp_midpoint_norm_matches_its_closed_form():
    a, b = gaussian(4000, 64), gaussian(4000, 64, seed=1)
    mid = lerp(a, b, 0.5)
    # exact, pair by pair: |(a + b)/2|² = (|a|² + |b|² + 2 a·b) / 4
    exact = (a.pow(2).sum(1) + b.pow(2).sum(1) + 2 * (a * b).sum(1)) / 4
    torch.testing.assert_close(mid.pow(2).sum(1), exact)
    # in expectation: E|(a + b)/2|² = d/2, with Var|m|² = 2·d/4 = d/2 per pair
    d, n = 64, 4000
    standard_error = math.sqrt(d / 2 / n)
    assert abs(mid.pow(2).sum(1).mean().item() - d / 2) < 4 * standard_error
    # slerp's midpoint of two draws keeps their norm (within the spread of the two norms)
    ratio = slerp(a, b, 0.5).norm(dim=1) / ((a.norm(dim=1) + b.norm(dim=1)) / 2)
    assert abs(ratio.mean().item() - 1) < 0.01
    assert abs((mid.norm(dim=1) / a.norm(dim=1)).mean().item() - 2 ** -0.5) < 0.02


def test_slerp_falls_back_to_lerp_for_parallel_opposite_and_zero_vectors():
    e = torch.tensor([1.0, 2.0, 2.0], dtype=torch.float64)
    t = torch.tensor([0.0, 0.3, 1.0], dtype=torch.float64)
    for z0, z1 in ((2 * e, 3 * e), (e, -e), (torch.zeros(3, dtype=torch.float64), e)):
        out = slerp(z0, z1, t)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, lerp(z0, z1, t))
    # a batch mixing a parallel row with a generic one: each row takes its own branch
    z0 = torch.stack([e, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)])
    z1 = torch.stack([2 * e, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)])
    out = slerp(z0, z1, 0.5)
    torch.testing.assert_close(out[0], 1.5 * e)
    torch.testing.assert_close(out[1], torch.tensor([2 ** -0.5, 2 ** -0.5, 0.0], dtype=torch.float64))


class Identity2(nn.Module):
    "A generator whose 'image' is its latent, shaped (N, 1, 1, d)."
    def __init__(self, d=2):
        super().__init__()
        self.latent_dim = d

    def forward(self, z, cond=None):
        return z[:, None, None, :] if cond is None else (z + cond)[:, None, None, :]


def test_paths_and_grids_have_the_documented_shapes_and_values():
    z0, z1 = gaussian(3, 5).float(), gaussian(3, 5, seed=1).float()
    assert latent_path(z0, z1, 4, 'linear').shape == (3, 4, 5)
    torch.testing.assert_close(latent_path(z0, z1, 3, 'linear')[:, 1], (z0 + z1) / 2)
    G = Identity2(5)
    images = interpolate(G, z0, z1, 6)
    assert images.shape == (3, 6, 1, 1, 5)
    torch.testing.assert_close(images[:, :, 0, 0], latent_path(z0, z1, 6, 'spherical'))
    assert interpolate(G, z0[0], z1[0], 2).shape == (1, 2, 1, 1, 5)
    corners = gaussian(4, 5).float()
    u = torch.linspace(0, 1, 3)[:, None, None]
    v = torch.linspace(0, 1, 4)[None, :, None]
    bilinear = (1 - u) * (1 - v) * corners[0] + (1 - u) * v * corners[1]
    bilinear = bilinear + u * (1 - v) * corners[2] + u * v * corners[3]
    torch.testing.assert_close(grid_latents(corners, 3, 4, 'linear'), bilinear)
    assert interpolation_grid(G, corners, 3, 4).shape == (3, 4, 1, 1, 5)


def test_latent_arithmetic_averages_exemplars():
    z_a = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    z_b = torch.tensor([[0.0, 1.0]])
    z_c = torch.tensor([5.0, 5.0])
    torch.testing.assert_close(latent_arithmetic(z_a, z_b, z_c), torch.tensor([7.0, 5.0]))


def toy_classifier():
    "Logits (x, −x) of the first coordinate: class 0 when x > 0; the second coordinate is ignored."
    c = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        c.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    return nn.Sequential(nn.Flatten(), c).eval()


def test_edit_follows_the_known_gradient_and_leaves_the_ignored_coordinate_alone():
    G, f = Identity2().eval(), toy_classifier()
    z = torch.tensor([[-1.0, 0.7], [-0.2, -3.0], [0.5, 1.0]])
    path = edit_along_classifier(G, f, z, 0, steps=1, lr=0.3)
    assert path.shape == (2, 3, 2)
    torch.testing.assert_close(path[0], z)
    # log p0 = log sigmoid(2x): its derivative in x is 2 (1 − sigmoid(2x)); y does not enter
    expected_x = z[:, 0] + 0.3 * 2 * (1 - torch.sigmoid(2 * z[:, 0]))
    torch.testing.assert_close(path[1, :, 0], expected_x)
    torch.testing.assert_close(path[1, :, 1], z[:, 1])
    # every row its own gradient: the batch edit equals the row-by-row edits
    rows = torch.cat([edit_along_classifier(G, f, z[i:i + 1], 0, steps=5, lr=0.3)[-1] for i in range(3)])
    torch.testing.assert_close(edit_along_classifier(G, f, z, 0, steps=5, lr=0.3)[-1], rows)
    # enough steps flip every sample to the target, toward either class
    final = edit_along_classifier(G, f, z, torch.tensor([0, 0, 1]), steps=40, lr=0.5)[-1]
    assert final[:2, 0].gt(0).all() and final[2, 0].lt(0)
    effect = edit_effect(f(G(z)).softmax(1), f(G(final)).softmax(1), torch.tensor([0, 0, 1]))
    assert effect['success'] == 1.0 and effect['target_gain'] > 0
    # with codes passed through cond
    shifted = edit_along_classifier(G, f, z, 0, steps=1, lr=0.3, cond=torch.full((3, 2), 0.5))
    torch.testing.assert_close(shifted[1, :, 0], z[:, 0] + 0.6 * (1 - torch.sigmoid(2 * (z[:, 0] + 0.5))))


def test_edit_effect_measures_the_other_classes_only():
    p0 = torch.tensor([[0.5, 0.3, 0.2]])
    proportional = torch.tensor([[0.25, 0.65, 0.1]])   # the others keep their 5:2 ratio
    e = edit_effect(p0, proportional, 1)
    assert e['success'] == 1.0 and abs(e['others_tv']) < 1e-6 and abs(e['target_gain'] - 0.35) < 1e-6
    swapped = torch.tensor([[0.2, 0.3, 0.5]])
    assert abs(edit_effect(p0, swapped, 1)['others_tv'] - (5 / 7 - 2 / 7)) < 1e-6


def test_code_purity_and_binomial_helpers_exact():
    purity, majority = code_purity(torch.tensor([[1, 1, 1, 0], [2, 0, 2, 2], [0, 1, 2, 0]]), 3)
    assert abs(purity - (0.75 + 0.75 + 0.5) / 3) < 1e-7 and majority.tolist() == [1, 2, 0]
    scipy_stats = pytest.importorskip('scipy.stats')
    for k, n, p in ((0, 5, 0.1), (7, 20, 0.1), (20, 20, 0.3), (33, 450, 0.1)):
        oracle = scipy_stats.binomtest(k, n, p, alternative='greater').pvalue
        assert math.isclose(binomial_tail(k, n, p), oracle,
                            rel_tol=1e-9)
        low, high = wilson_interval(k, n)
        ci = scipy_stats.binomtest(k, n, p).proportion_ci(confidence_level=0.95, method='wilson')
        assert abs(low - ci.low) < 1e-3 and abs(high - ci.high) < 1e-3


@pytest.mark.parametrize('call, message', [
    (lambda: lerp(torch.zeros(3), torch.zeros(4), 0.5), 'z1: expected'),
    (lambda: slerp(torch.zeros(3), torch.zeros(3), torch.zeros(2, 2)), 't: expected'),
    (lambda: slerp(torch.zeros(3, dtype=torch.long), torch.zeros(3), 0.5), 'z0: expected'),
    (lambda: slerp(torch.ones(3), torch.ones(3), 0.5, eps=0), 'eps: expected'),
    (lambda: latent_path(torch.zeros(1, 3), torch.zeros(1, 3), 4, 'cubic'), 'mode: expected'),
    (lambda: latent_path(torch.zeros(1, 3), torch.zeros(1, 3), 1), 'steps: expected'),
    (lambda: interpolate(Identity2(3), torch.zeros(2, 4), torch.zeros(2, 4)), 'z0: expected'),
    (lambda: interpolation_grid(Identity2(3), torch.zeros(3, 3)), 'corners: expected'),
    (lambda: latent_arithmetic(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(3)), 'z_b: expected'),
    (lambda: latent_arithmetic(torch.zeros(2, 3), torch.zeros(0, 3), torch.zeros(3)), 'z_b: expected'),
    (lambda: edit_along_classifier(Identity2().eval(), toy_classifier(), torch.zeros(2, 2), 5),
     'target: expected'),
    (lambda: edit_along_classifier(Identity2().eval(), toy_classifier(), torch.zeros(2, 2), 0.5),
     'target: expected'),
    (lambda: edit_along_classifier(Identity2().train(), toy_classifier(), torch.zeros(2, 2), 0),
     'G/classifier: expected'),
    (lambda: edit_along_classifier(Identity2().eval(), toy_classifier(), torch.zeros(2, 2), 0, lr=-1),
     'lr: expected'),
    (lambda: edit_effect(torch.ones(2, 3) / 3, torch.ones(3, 3) / 3, 0), 'p_after: expected'),
    (lambda: code_purity(torch.zeros(2, 3), 3), 'predicted: expected'),
    (lambda: binomial_tail(5, 3, 0.1), 'k: expected'),
    (lambda: wilson_interval(1, 0), 'n: expected'),
    (lambda: latent.load_generator('no-such-generator'), 'name: expected'),
])
def test_bad_input_is_one_line_naming_the_argument(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value).startswith(message) and '\n' not in str(e.value), str(e.value)


def test_export_and_load_round_trip(tmp_path):
    from ganlab.models import build
    torch.manual_seed(0)
    G, _ = build('dcgan', (1, 28, 28), 16, width=8)
    run = tmp_path / 'run'
    run.mkdir()
    config = dict(arch='dcgan', loss='nsgan', latent_dim=16, width=8, data='fashion-mnist')
    (run / 'config.json').write_text(json.dumps(config))
    torch.save({'step': 3, 'generator': G.state_dict()}, run / 'checkpoint.pt')
    latent.export_generator(run, 'toy', 'ganlab-train --toy', cpu_seconds=1.5, folder=tmp_path / 'store')
    loaded = latent.load_generator('toy', folder=tmp_path / 'store')
    assert loaded.record['command'] == 'ganlab-train --toy' and loaded.record['dtype'] == 'float16'
    z = torch.randn(4, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(z), G.eval()(z), rtol=0, atol=2e-2)


def test_stored_generators_load_with_their_commands():
    names = sorted(p.stem for p in latent.latent_dir().glob('*.json'))
    assert names == ['fashion-dcgan-seed0', 'fashion-dcgan-seed1',
                     'fashion-infogan-seed0', 'fashion-infogan-seed1']
    for name in names:
        G = latent.load_generator(name)
        assert 'ganlab-train' in G.record['command'] and G.record['bytes'] < 1_000_000
        z = torch.randn(2, G.latent_dim)
        codes = torch.zeros(2, G.record['n_classes'] + G.record['n_continuous'])
        if G.record['n_classes']:
            codes[:, 0] = 1
        out = G(z) if not G.record['n_classes'] else G(z, codes)
        assert out.shape == (2, 1, 28, 28) and torch.isfinite(out).all()
