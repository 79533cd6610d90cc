"PacGAN's networks (Maxout, the generator, the maxout D, `--arch pacgan`), packing them, the 100k training sets."
import pytest
import torch
from ganlab.models import Maxout, PacGANGenerator, MaxoutDiscriminator, pacgan_init, build
from ganlab.tricks import Packed, rebuild_discriminator
from ganlab.recipes import TrainConfig, build_setup
from ganlab.benchmarks import TrainingSample
from ganlab import data as gdata
from ganlab.train import train
from ganlab.studies import studies


def _maxout_2x3():
    layer = Maxout(2, 2, pieces=3)
    with torch.no_grad():
        layer.linear.weight.copy_(torch.tensor([[1., 0.], [-1., 0.], [0., 2.], [0., 0.], [1., 1.], [0., 0.]]))
        layer.linear.bias.copy_(torch.tensor([0., 0., 0., 1., 0., -5.]))
    return layer


def test_maxout_exact_values():
    # unit 0 = max(x1, -x1, 2·x2), unit 1 = max(1, x1 + x2, -5)
    x = torch.tensor([[3., 1.], [-0.5, 2.], [0., 0.], [-2., -3.]])
    expected = torch.tensor([[3., 4.], [4., 1.5], [0., 1.], [2., 1.]])
    assert torch.equal(_maxout_2x3()(x), expected)


def test_maxout_gradient_flows_to_the_winning_piece_only():
    layer = _maxout_2x3()
    layer(torch.tensor([[3., 1.]])).sum().backward()
    # unit 0's winner is piece 0 (x1 = 3), unit 1's is piece 1 (x1 + x2 = 4): rows 0 and 4
    assert torch.equal(layer.linear.bias.grad, torch.tensor([1., 0., 0., 0., 1., 0.]))


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_features=0, out_features=2), '^in_features: expected a positive integer, got 0$'),
    (dict(in_features=2, out_features=2, pieces=1.5), '^pieces: expected a positive integer, got 1.5$'),
])
def test_maxout_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Maxout(**kwargs)


def test_maxout_bad_input_names_x():
    with pytest.raises(ValueError, match=r'^x: expected shape \(N, 2\), got \(4, 3\)$'):
        _maxout_2x3()(torch.zeros(4, 3))


def test_pacgan_networks_shapes_and_initialisation():
    torch.manual_seed(0)
    G, D = build('pacgan', (2,))
    assert isinstance(G, PacGANGenerator) and isinstance(D, MaxoutDiscriminator)
    hidden = [m for m in G.net if isinstance(m, torch.nn.Linear)][:-1]
    assert len(hidden) == 4 and all(m.bias is None and m.out_features == 400 for m in hidden)
    assert all(m.momentum == 0.05 for m in G.net if isinstance(m, torch.nn.BatchNorm1d))
    assert [(m.in_features, m.out_features, m.pieces) for m in D.body] == [(2, 200, 5), (200, 200, 5), (200, 200, 5)]
    assert abs(D.body[2].linear.weight.std().item() - 0.02) < 1e-3 and D.head.bias.item() == 0
    assert G(torch.randn(10, 2)).shape == (10, 2) and D(torch.randn(10, 2)).shape == (10,)
    with pytest.raises(ValueError, match=r'^z: expected shape \(N, 2\), got \(10, 3\)$'):
        G(torch.randn(10, 3))


def test_pacgan_init_bad_std():
    with pytest.raises(ValueError, match='^std: expected a positive standard deviation, got 0$'):
        pacgan_init(torch.nn.Linear(2, 2), std=0)


def test_packing_the_maxout_discriminator_shapes_and_scores():
    torch.manual_seed(0)
    _, D = build('pacgan', (2,))
    inner = rebuild_discriminator(D, input_factor=4)
    assert isinstance(inner, MaxoutDiscriminator) and inner.in_dim == 8 and inner.body[0].in_features == 8
    packed = Packed(inner, 4)
    x = torch.randn(400, 2)
    scores = packed(x)
    assert scores.shape == (400,)
    by_pack = inner(x.reshape(100, 8))                  # pack i = samples 4i ... 4i + 3, side by side
    assert torch.equal(scores, by_pack.repeat_interleave(4))
    with pytest.raises(ValueError, match='^x: expected a batch whose size is a multiple of the packing degree m = 4'):
        packed(torch.randn(10, 2))
    with pytest.raises(ValueError, match='^dropout: expected no dropout'):
        rebuild_discriminator(D, dropout=0.3)


def test_pack_trick_on_the_pacgan_architecture():
    cfg = TrainConfig(data='ring8-100k', arch='pacgan', batch_size=300, tricks=('pack:m=3',)).resolved()
    setup = build_setup(cfg, gdata.load('ring8-100k'))
    assert isinstance(setup.D, Packed) and setup.D.m == 3 and setup.D.inner.in_dim == 6
    bad = TrainConfig(data='ring8-100k', arch='pacgan', batch_size=100, tricks=('pack:m=3',)).resolved()
    with pytest.raises(ValueError, match='^m: expected a packing degree that divides the batch size 100, got 3$'):
        build_setup(bad, gdata.load('ring8-100k'))


def test_training_sample_draws_its_own_points_reproducibly():
    mixture = gdata.ring()
    sample = TrainingSample(mixture, n=1000, seed=3)
    assert len(sample) == 1000 and sample.shape == (2,) and sample.n_classes == 8 and sample.std == 0.01
    assert torch.equal(sample.centers, mixture.centers)
    x, y = sample.sample(64, generator=torch.Generator().manual_seed(0))
    again, _ = sample.sample(64, generator=torch.Generator().manual_seed(0))
    assert x.shape == (64, 2) and y.shape == (64,) and torch.equal(x, again)
    assert bool((sample.points[:, None] == x).all(-1).any(0).all())
    assert torch.equal(TrainingSample(mixture, n=1000, seed=3).points, sample.points)
    assert not torch.equal(TrainingSample(mixture, n=1000, seed=4).points, sample.points)
    assert len(gdata.load('grid25-100k')) == 100_000


@pytest.mark.parametrize('call, message', [
    (lambda: TrainingSample(gdata.ring(), n=0), '^n: expected a positive integer, got 0$'),
    (lambda: TrainingSample('ring', n=10), '^mixture: expected a GaussianMixture, got \'str\'$'),
    (lambda: TrainingSample(gdata.ring(), n=10).sample(-1), '^n: expected a positive integer, got -1$'),
])
def test_training_sample_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_short_pacgan_run_counts_modes(tmp_path):
    cfg = TrainConfig(data='grid25-100k', arch='pacgan', width=16, batch_size=20, steps=3, tricks=('pack:m=2',),
                      lr_g=1e-4, lr_d=1e-4, betas=(0.8, 0.999), diagnostics=False, checkpoint_every=0, eval_samples=100)
    summary = train(cfg, out=tmp_path / 'run', progress=False)
    assert summary['failure'] is None and summary['metrics']['n_modes'] == 25


def test_the_paper_study_is_the_papers_setup():
    study = studies['pacgan-paper']
    assert list(study.methods) == ['GAN', 'PacGAN2', 'PacGAN3', 'PacGAN4'] and len(study.seeds) == 10
    cfg = study.config('PacGAN3', 'grid25-100k', seed=7).resolved()
    assert (cfg.arch, cfg.batch_size, cfg.tricks, cfg.seed) == ('pacgan', 300, ('pack:m=3',), 7)
    assert (cfg.lr_g, cfg.lr_d, tuple(cfg.betas), cfg.eval_samples, cfg.latent_dim) == (1e-4, 1e-4, (0.8, 0.999), 2500, 2)
    assert set(study.published) == set(study.methods)
