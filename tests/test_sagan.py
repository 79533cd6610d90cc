"SAGAN-lite (ganlab.sagan): shapes, spectral norm, attention, conditional batch norm, the projection head, the conditional hinge loss, bad input, and ganlab-train/ganlab-eval end to end."
import json, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn
from torch.nn.utils import parametrize
from conftest import load_or_skip
from ganlab import models
from ganlab.losses import get, hinge_d_loss, hinge_g_loss
from ganlab.models import ConditionalBatchNorm2d, build
from ganlab.recipes import TrainConfig
from ganlab.regularizers import orthogonal_penalty
from ganlab.sagan import SAGANGenerator, SAGANDiscriminator, sagan_pair

BIN = Path(sys.executable).parent


def pair(width=8, latent_dim=12, seed=0):
    torch.manual_seed(seed)
    return sagan_pair((1, 28, 28), latent_dim=latent_dim, width=width, n_classes=10)


def inputs(n=6, latent_dim=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, latent_dim, generator=g), torch.randint(10, (n,), generator=g), torch.rand(n, 1, 28, 28, generator=g) * 2 - 1


def randomise_cbn(G, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.gamma.weight.copy_(1 + 0.5 * torch.randn(m.gamma.weight.shape, generator=g))
                m.beta.weight.copy_(0.5 * torch.randn(m.beta.weight.shape, generator=g))


def test_shapes_and_range():
    G, D = pair()
    z, y, x = inputs()
    fake = G(z, y)
    assert fake.shape == (6, 1, 28, 28) and fake.abs().max() <= 1
    assert D(x, y).shape == (6,) and D(fake, y).shape == (6,)
    assert G.latent_dim == 12 and G.n_classes == D.n_classes == 10


def test_spectral_norm_on_every_weight_layer():
    G, D = pair()
    in_d = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]   # the class embedding too
    attention = set(G.attention.modules())                    # G's attention: chapter 20's block, as it is
    in_g = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) and m not in attention]
    assert len(in_d) == 8 and len(in_g) == 8                 # D: 3 convs, q/k/v, head, embedding; G: linear, 6 convs, output
    for m in in_d + in_g:
        assert parametrize.is_parametrized(m, 'weight'), m
        assert type(m.parametrizations.weight[0]).__name__ == '_SpectralNorm'
    D.eval()
    for m in D.modules():                                     # every weight D uses has spectral norm 1
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            w = m.weight.detach().flatten(1)
            assert abs(torch.linalg.matrix_norm(w, ord=2).item() - 1) < 0.3   # one power iteration per forward


def test_attention_layers_are_in_the_path():
    G, D = pair()
    z, y, x = inputs()
    G.eval(); D.eval()                                        # no power iteration, running BN statistics
    g0, d0 = G(z, y), D(x, y)
    assert torch.equal(G(z, y), g0)                           # deterministic in eval mode
    with torch.no_grad():
        G.attention.gamma.fill_(1.0)
        D.base.attention.gamma.fill_(1.0)
    assert not torch.allclose(G(z, y), g0) and not torch.allclose(D(x, y), d0)


def test_conditional_batch_norm_carries_the_class():
    G, _ = pair()
    z, y, _ = inputs()
    G.eval()
    assert torch.equal(G(z, y), G(z, (y + 1) % 10))          # at init every class has γ = 1, β = 0
    randomise_cbn(G)
    assert not torch.allclose(G(z, y), G(z, (y + 1) % 10))    # learned per-class γ, β: y changes the image
    assert torch.allclose(G(z[:1], y[:1]), G(z, y)[:1], atol=1e-6)   # eval mode: each sample on its own


def test_reset_conditional_batch_norm_is_plain_batch_norm():
    G, _ = pair()
    randomise_cbn(G)
    for m in G.modules():
        if isinstance(m, ConditionalBatchNorm2d):
            nn.init.ones_(m.gamma.weight); nn.init.zeros_(m.beta.weight)
    x, y = torch.randn(5, 16, 7, 7), torch.tensor([0, 3, 9, 3, 1])
    assert torch.allclose(G.block1.norm1(x, y), nn.BatchNorm2d(16, affine=False)(x), atol=1e-6)
    z, y, _ = inputs()
    G.eval()                                                  # (train mode would refine σ̂ between the calls)
    assert torch.equal(G(z, y), G(z, torch.zeros_like(y)))    # y plays no part


def test_projection_discriminator_is_psi_plus_inner_product():
    _, D = pair()
    _, y, x = inputs()
    D.eval()                                                  # fixed spectral-norm estimates: exact comparison
    phi = D.features(x)
    expected = D.base.head(phi).squeeze(1) + (D.embed(y) * phi).sum(1)
    assert torch.equal(D(x, y), expected)
    other = (y + 1) % 10
    assert torch.allclose(D(x, y) - D(x, other), ((D.embed(y) - D.embed(other)) * phi).sum(1), atol=1e-5)
    assert phi.shape == (6, 16)                               # global sum pooling of 2·width maps


def test_conditional_hinge_loss_values():
    _, D = pair()
    z, y, real = inputs()
    fake = torch.rand(6, 1, 28, 28) * 2 - 1
    D.eval()
    loss = get('cgan_hinge').fresh()
    r, f = D(real, y), D(fake, y)
    d = loss.d_loss(D, real, fake, y=y)
    assert torch.allclose(d, torch.relu(1 - r).mean() + torch.relu(1 + f).mean())
    assert torch.allclose(d, hinge_d_loss(r, f))
    assert torch.allclose(loss.g_loss(D, fake, y=y), -f.mean()) and torch.allclose(hinge_g_loss(f), -f.mean())
    y_fake = (y + 3) % 10                                     # fakes scored with their own labels
    assert torch.allclose(loss.d_loss(D, real, fake, y=y, y_fake=y_fake),
                          torch.relu(1 - r).mean() + torch.relu(1 + D(fake, y_fake)).mean())
    with pytest.raises(ValueError, match='^y: expected'):
        loss.d_loss(D, real, fake)                            # conditional: labels required


def test_training_defaults_are_sagans():
    cfg = TrainConfig(data='fashion-mnist', arch='sagan', loss='cgan_hinge').resolved()
    assert (cfg.optimizer, cfg.lr_g, cfg.lr_d, tuple(cfg.betas), cfg.n_critic) == ('adam', 1e-4, 4e-4, (0.0, 0.9), 1)
    assert (cfg.latent_dim, cfg.width, cfg.d_norm) == (100, 32, None)
    G, D = build('sagan', (1, 28, 28), conditioning='labels', n_classes=10, width=8)
    assert type(G) is SAGANGenerator and type(D) is SAGANDiscriminator   # native: no wrappers


def test_orthogonal_penalty_leaves_embedding_tables_out():
    G, _ = pair()
    filters = [p for n, p in G.named_parameters() if p.ndim >= 2 and '.gamma.' not in n and '.beta.' not in n]
    assert len(filters) < len([p for p in G.parameters() if p.ndim >= 2])
    assert torch.allclose(orthogonal_penalty(G, 1.0), orthogonal_penalty(filters, 1.0))


@pytest.mark.parametrize('call, name', [
    (lambda G, D, z, y, x: G(z, torch.full_like(y, 10)), 'y'),           # a label out of range
    (lambda G, D, z, y, x: G(z, -torch.ones_like(y)), 'y'),
    (lambda G, D, z, y, x: G(z, y.float()), 'y'),                       # float labels
    (lambda G, D, z, y, x: G(z, y[:3]), 'y'),                           # one label per sample
    (lambda G, D, z, y, x: G(z[:, :5], y), 'z'),                        # wrong latent size
    (lambda G, D, z, y, x: D(x, torch.full_like(y, 12)), 'y'),
    (lambda G, D, z, y, x: D(x[:, :, :14, :14], y), 'x'),               # wrong image size
    (lambda G, D, z, y, x: sagan_pair((1, 28, 28)), 'conditioning'),    # unconditional use
    (lambda G, D, z, y, x: build('sagan', (1, 28, 28)), 'conditioning'),
    (lambda G, D, z, y, x: build('sagan', (1, 28, 28), conditioning='labels', n_classes=10, d_output='score+classes'), 'conditioning'),
    (lambda G, D, z, y, x: sagan_pair((3, 32, 32), n_classes=10), 'data_shape'),
])
def test_bad_input_names_the_argument(call, name):
    G, D = pair()
    z, y, x = inputs()
    with pytest.raises(ValueError, match=f'^{name}: expected '):
        call(G, D, z, y, x)


def test_unconditional_training_is_refused_in_one_line(tmp_path):
    out = tmp_path / 'run'
    r = subprocess.run([str(BIN / 'ganlab-train'), '--data', 'ring8', '--arch', 'sagan', '--loss', 'hinge', '--out', str(out),
                        '--steps', '1', '--quiet'], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count('\n') == 1
    assert r.stderr.startswith('ganlab-train: ') and 'expected' in r.stderr and 'sagan' in r.stderr
    assert not (out / 'checkpoint.pt').exists()


def test_ganlab_train_and_eval_a_sagan_run(tmp_path):
    load_or_skip('fashion-mnist', split='train')
    run = tmp_path / 'sagan'
    train = [str(BIN / 'ganlab-train'), '--data', 'fashion-mnist', '--arch', 'sagan', '--loss', 'cgan_hinge',
             '--width', '8', '--batch-size', '16', '--steps', '3', '--eval-samples', '20', '--out', str(run), '--quiet']
    r = subprocess.run(train, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((run / 'config.json').read_text())
    assert (cfg['arch'], cfg['loss'], cfg['lr_g'], cfg['lr_d'], list(cfg['betas'])) == ('sagan', 'cgan_hinge', 1e-4, 4e-4, [0.0, 0.9])
    assert all((run / f).is_file() for f in ('checkpoint.pt', 'samples.png', 'metrics.json'))
    evaluate = [str(BIN / 'ganlab-eval'), str(run), '--samples', '200', '--pr-samples', '50', '--kid-subsets', '5',
                '--kid-subset-size', '50', '--quiet']
    r = subprocess.run(evaluate, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'label accuracy' in r.stdout
    m = json.loads((run / 'metrics.json').read_text())
    assert m['eval_step'] == 3 and m['evaluator'] == 'fashion-mnist' and m['fid'] > 0
    assert m['chance'] == 0.1 and m['label_samples'] == 200 and 0 <= m['label_accuracy'] <= 1
