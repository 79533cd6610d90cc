import copy, json, math
from pathlib import Path
import pytest, torch
import torch.nn.functional as F
from ganlab import losses as L
from ganlab.progressive import (
    GrowthSchedule, EqualizedConv2d, EqualizedLinear, PixelNorm, MinibatchStdDev, ProgressiveGenerator,
    ProgressiveDiscriminator, ProgressiveGame, blend_real,
)
from ganlab.trainer import Trainer
from ganlab.train import main


class TinyImages:
    "64 fixed random images in [-1, 1]."
    n_classes, centers = 0, None

    def __init__(self, size=28):
        self.shape = (1, size, size)
        self.x = torch.rand(64, 1, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def sample(self, n, generator):
        i = torch.randint(len(self.x), (n,), generator=generator)
        return self.x[i], torch.zeros(n, dtype=torch.long)


def tiny_game(seed, size=28, schedule=None):
    torch.manual_seed(seed)
    G = ProgressiveGenerator(latent_dim=8, channels=1, size=size, width=4)
    D = ProgressiveDiscriminator(channels=1, size=size, width=4)
    adam = lambda params: torch.optim.Adam(params, 1e-3, betas=(0.0, 0.99))
    return ProgressiveGame(G, D, copy.deepcopy(L.wgan_gp), adam, adam, schedule or GrowthSchedule(3, 4, 3))


def test_schedule_values_and_bad_input():
    s = GrowthSchedule(4, fade=10, stable=5)
    assert [s(t) for t in (0, 4, 5, 10, 14, 15, 20, 35, 1000)] == [
        (0, 1.0), (0, 1.0), (1, 0.0), (1, 0.5), (1, 0.9), (1, 1.0), (2, 0.0), (3, 0.0), (3, 1.0)]
    assert GrowthSchedule.for_budget(3, 500).fade == 100
    with pytest.raises(ValueError, match='fade: expected a positive number of steps, got 0'):
        GrowthSchedule(3, 0, 5)
    with pytest.raises(ValueError, match='t: expected a step >= 0, got -1'):
        s(-1)


def test_equalized_layers_scale_by_he_constant():
    conv = EqualizedConv2d(16, 8, 3)
    assert math.isclose(conv.scale, math.sqrt(2 / (16 * 9)), rel_tol=1e-15)
    assert conv.weight.shape == (8, 16, 3, 3) and torch.equal(conv.bias, torch.zeros(8))
    x = torch.randn(2, 16, 5, 5)
    assert torch.equal(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1))
    lin = EqualizedLinear(50, 4, lr_multiplier=0.01, bias_init=1.0)
    assert math.isclose(lin.scale, 0.01 * math.sqrt(2 / 50), rel_tol=1e-12)
    assert torch.allclose(lin(torch.zeros(3, 50)), torch.ones(3, 4))


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    a = torch.randn(4, 16, 3, 3) * 10 - 4
    assert torch.allclose(PixelNorm()(a).pow(2).mean(1), torch.ones(4, 3, 3), atol=1e-5)


def test_minibatch_stddev_closed_forms_and_bad_batch():
    x = torch.randn(1, 2, 3, 3)
    out = MinibatchStdDev(2)(torch.cat([x, -x, 3 * x, -3 * x]))
    assert out.shape == (4, 3, 3, 3)
    # groups are samples {0, 2} and {1, 3}: std of (x, 3x) is |x|, of (-x, -3x) too
    assert torch.allclose(out[:, 2], x.abs().mean().expand(4, 3, 3), atol=1e-6)
    with pytest.raises(ValueError, match='x: expected a batch size divisible by the group size 4, got 6'):
        MinibatchStdDev(4)(torch.randn(6, 2, 3, 3))


@pytest.mark.parametrize('size,resolutions', [(28, (7, 14, 28)), (32, (4, 8, 16, 32))])
def test_fade_in_is_exact_at_both_ends(size, resolutions):
    torch.manual_seed(0)
    G = ProgressiveGenerator(latent_dim=8, channels=3, size=size, width=4)
    D = ProgressiveDiscriminator(channels=3, size=size, width=4)
    z = torch.randn(4, 8)
    for stage, r in enumerate(resolutions):
        G.set_progress(stage, 1.0)
        assert G.synthesize(z).shape == (4, 3, r, r) and G(z).shape == (4, 3, size, size)
        if stage == 0:
            continue
        G.set_progress(stage - 1, 1.0)
        previous = G.synthesize(z)
        G.set_progress(stage, 0.0)
        assert torch.equal(G.synthesize(z), F.interpolate(previous, scale_factor=2, mode='nearest'))
        # the full-size output of the grown network at alpha = 0 is the previous network's, exactly
        G.set_progress(stage - 1, 1.0)
        full_previous = G(z)
        G.set_progress(stage, 0.0)
        assert torch.equal(G(z), full_previous)
        x = torch.randn(4, 3, r, r)
        D.set_progress(stage - 1, 1.0)
        d_previous = D(F.avg_pool2d(x, 2))
        D.set_progress(stage, 0.0)
        assert torch.equal(D(x), d_previous)
    # alpha = 1: the new block alone (the last stage's toRGB on the last block)
    G.set_progress(len(resolutions) - 1, 1.0)
    h = G.input(z)
    for block in G.blocks:
        h = block(h)
    assert torch.equal(G.synthesize(z), G.to_rgb[-1](h))


def test_bad_progress_and_inputs_are_named():
    G = ProgressiveGenerator(latent_dim=8, width=4)
    D = ProgressiveDiscriminator(width=4)
    with pytest.raises(ValueError, match=r'stage: expected an integer in \[0, 2\], got 3'):
        G.set_progress(3, 1.0)
    with pytest.raises(ValueError, match=r'alpha: expected a number in \[0, 1\], got 1.5'):
        D.set_progress(1, 1.5)
    with pytest.raises(ValueError, match=r'z: expected shape \(N, 8\), got \(2, 3\)'):
        G(torch.randn(2, 3))
    D.set_progress(1, 1.0)
    with pytest.raises(ValueError, match='x: expected images'):
        D(torch.randn(4, 1, 10, 10))
    with pytest.raises(ValueError, match='size: expected 28, 32, 64'):
        ProgressiveGenerator(size=30)


def test_blend_real_at_both_ends():
    x = torch.randn(2, 1, 28, 28)
    x14 = F.avg_pool2d(x, 2)
    assert torch.equal(blend_real(x, 14, 1.0), x14)
    assert torch.equal(blend_real(x, 14, 0.0), F.interpolate(F.avg_pool2d(x14, 2), scale_factor=2))


def test_optimisers_are_rebuilt_over_the_active_parameters_at_each_stage():
    game = tiny_game(0)
    n_params = lambda opt: sum(p.numel() for group in opt.param_groups for p in group['params'])
    assert n_params(game.opt_g) == sum(p.numel() for p in game.G.active_parameters())
    Trainer(game, TinyImages(), batch_size=8, seed=0).fit(4)  # t = 3 is stage 1's first step
    assert game.stage == 1
    assert n_params(game.opt_g) == sum(p.numel() for p in game.G.active_parameters())
    assert n_params(game.opt_g) > sum(p.numel() for p in game.G.input.parameters()) + 4 * 1 + 1


@pytest.mark.parametrize('n', [5, 11])
def test_resume_mid_fade_is_bit_for_bit(n):
    "2N steps straight = N steps + checkpoint + fresh game and trainer + N steps; N in a fade (stage 1 or 2)."
    schedule = GrowthSchedule(3, 4, 3)
    assert 0 < schedule(n)[1] < 1
    straight = Trainer(tiny_game(0), TinyImages(), batch_size=8, seed=1).fit(2 * n)
    first = Trainer(tiny_game(0), TinyImages(), batch_size=8, seed=1).fit(n)
    saved = copy.deepcopy(first.state_dict())
    assert saved['progress'] == dict(t=n, stage=first.game.stage, alpha=first.game.alpha, fade=4, stable=3)
    resumed = Trainer(tiny_game(5), TinyImages(), batch_size=8, seed=9).load_state_dict(saved).fit(2 * n)
    for name in ('generator', 'discriminator'):
        a = straight.game.players()[name].state_dict()
        b = resumed.game.players()[name].state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert straight.game.opt_g.state_dict()['state'].keys() == resumed.game.opt_g.state_dict()['state'].keys()
    assert (resumed.game.t, resumed.game.stage) == (straight.game.t, straight.game.stage)


@pytest.fixture
def tiny_data(monkeypatch):
    import ganlab.data as gdata
    imgs = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    monkeypatch.setitem(gdata.datasets._items, 'tiny', lambda split='train', **kw: gdata.ImageTensors(imgs, torch.zeros(64, dtype=torch.long)))


ARGS = ['--data', 'tiny', '--arch', 'progressive', '--game', 'progressive', '--width', '4', '--latent-dim', '8',
        '--batch-size', '8', '--eval-samples', '16', '--quiet']


def test_ganlab_train_resumes_mid_fade_exactly(tmp_path, tiny_data, monkeypatch):
    # 10 steps: 2 per phase (stage 0: steps 0-1, stage 1 fades in over steps 2-3), so step 3 has alpha = 0.5
    assert main(['--out', str(tmp_path / 'whole'), '--steps', '10', '--checkpoint-every', '10', *ARGS]) == 0
    # the same run, stopped after 3 steps (its checkpoint at step 3), then resumed
    part = tmp_path / 'part'
    fit = Trainer.fit
    monkeypatch.setattr(Trainer, 'fit', lambda self, steps: fit(self, min(steps, 3)))
    assert main(['--out', str(part), '--steps', '10', '--checkpoint-every', '10', *ARGS]) == 0
    monkeypatch.setattr(Trainer, 'fit', fit)
    state = torch.load(part / 'checkpoint.pt', weights_only=False)
    assert state['step'] == 3 and state['progress'] == dict(t=3, stage=1, alpha=0.0, fade=2, stable=2)
    assert main(['--out', str(part), '--resume', '--steps', '10', '--quiet']) == 0
    a = torch.load(tmp_path / 'whole' / 'checkpoint.pt', weights_only=False)
    b = torch.load(part / 'checkpoint.pt', weights_only=False)
    assert a['progress'] == b['progress'] == dict(t=10, stage=2, alpha=1.0, fade=2, stable=2)
    for name in ('generator', 'discriminator'):
        assert all(torch.equal(a[name][k], b[name][k]) for k in a[name]), name
    m = json.loads((tmp_path / 'whole' / 'metrics.json').read_text())
    assert m['step'] == 10


def test_recipe_refuses_other_architectures_and_conditioning(tmp_path, tiny_data, capsys):
    from ganlab.recipes import TrainConfig, build_run
    import ganlab.data as gdata
    data = gdata.load('tiny')
    with pytest.raises(ValueError, match="arch: expected 'progressive' for --game progressive, got 'dcgan'"):
        build_run(TrainConfig(data='tiny', arch='dcgan', game='progressive').resolved(), data)
    with pytest.raises(ValueError, match='conditioning: expected none'):
        build_run(TrainConfig(data='tiny', arch='progressive', game='progressive', loss='cgan').resolved(), data)
