import json
import pytest, torch
from ganlab.stylegan import (
    MappingNetwork, adaptive_instance_norm, AdaIN, NoiseInjection, SynthesisNetwork, StyleGenerator, truncate,
    mix_styles, laplacian_bands, noise_change_by_resolution,
)
from ganlab.models import build, DCGANDiscriminator
from ganlab.train import main, Trainer


def small_generator(seed=0, noise_scale=0.0):
    torch.manual_seed(seed)
    G = StyleGenerator(latent_dim=8, channels=1, size=28, width=16, mapping_layers=2)
    with torch.no_grad():
        for layer in G.synthesis.layers:
            layer.noise.weight.fill_(noise_scale)
    return G


def test_adain_sets_the_style_moments():
    x = torch.randn(3, 5, 6, 6) * 4 - 1
    scale = torch.rand(3, 5) + 0.5
    bias = torch.randn(3, 5)
    out = adaptive_instance_norm(x, scale, bias)
    assert torch.allclose(out.mean(dim=(2, 3)), bias, atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), scale, atol=1e-5)
    # the module starts at scale 1, bias 0: plain instance normalisation
    layer = AdaIN(5, 4)
    y_s, y_b = layer.style(torch.zeros(3, 4))
    assert torch.equal(y_s, torch.ones(3, 5)) and torch.equal(y_b, torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r'scale: expected shape \(3, 5\), got \(3, 4\)'):
        adaptive_instance_norm(x, scale[:, :4], bias)


def test_noise_injection_starts_at_zero_and_scales_per_channel():
    layer = NoiseInjection(3)
    x = torch.randn(2, 3, 4, 4)
    noise = torch.randn(2, 1, 4, 4)
    assert torch.equal(layer(x, noise), x)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.0, 1.0, 2.0]))
    assert torch.equal(layer(x, noise), x + torch.tensor([0.0, 1.0, 2.0])[None, :, None, None] * noise)
    with pytest.raises(ValueError, match=r'noise: expected shape \(2, 1, 4, 4\), got \(2, 3, 4, 4\)'):
        layer(x, torch.randn(2, 3, 4, 4))


def test_mapping_network_shapes_and_bad_input():
    f = MappingNetwork(8, 12, n_layers=3)
    assert f(torch.randn(5, 8)).shape == (5, 12)
    assert sum(isinstance(m, torch.nn.LeakyReLU) for m in f.modules()) == 3
    with pytest.raises(ValueError, match=r'z: expected shape \(N, 8\), got \(5, 7\)'):
        f(torch.randn(5, 7))


def test_truncation_closed_forms():
    w = torch.randn(4, 6)
    w_avg = torch.randn(6)
    assert torch.equal(truncate(w, w_avg, 1.0), w_avg + (w - w_avg))
    assert torch.equal(truncate(w, w_avg, 0.0), w_avg.expand(4, 6))
    assert torch.allclose(truncate(w, w_avg, 0.5), (w + w_avg) / 2)


def test_psi_zero_gives_the_image_of_the_mean_w_for_every_z():
    G = small_generator(noise_scale=0.2)
    G.train()
    G(torch.randn(16, 8))
    G.eval()
    with torch.no_grad():
        images = G.generate(torch.randn(5, 8), psi=0.0)
        same = G.synthesis(G.w_avg.expand(5, G.n_layers, -1), G._noise(5, 'cpu'))
    assert torch.equal(images, same)


def test_w_avg_is_a_running_mean_of_f_z():
    G = small_generator()
    z = torch.randn(10, 8)
    G.train()
    G.mixing = 0.0
    G(z)
    with torch.no_grad():
        assert torch.allclose(G.w_avg, (1 - G.w_avg_beta) * G.mapping(z).mean(0))
    G.eval()
    before = G.w_avg.clone()
    G(z)
    assert torch.equal(G.w_avg, before)  # eval mode leaves it alone
    assert 'w_avg' in G.state_dict()


def test_mixing_keeps_the_coarse_layers_of_the_first_latent():
    G = small_generator(noise_scale=0.1).eval()
    z1, z2 = torch.randn(2, 3, 8)
    with torch.no_grad():
        _, alone = G.generate(z1, features=True)
        for k in range(G.n_layers + 1):
            _, mixed = G.generate(z1, z2=z2, crossover=k, features=True)
            assert all(torch.equal(mixed[i], alone[i]) for i in range(k)), k
            assert all(not torch.allclose(mixed[i], alone[i]) for i in range(k, G.n_layers)), k
    ws = mix_styles(torch.zeros(2, 4), torch.ones(2, 4), 6, 2)
    assert ws[:, :2].eq(0).all() and ws[:, 2:].eq(1).all()
    with pytest.raises(ValueError, match=r'crossover: expected a layer index in \[0, 6\], got 7'):
        mix_styles(torch.zeros(2, 4), torch.ones(2, 4), 6, 7)


def test_noise_is_fresh_in_training_and_fixed_in_eval():
    G = small_generator(noise_scale=0.5)
    z = torch.randn(3, 8)
    G.eval()
    with torch.no_grad():
        assert torch.equal(G(z), G(z))
    G.train()
    G.mixing = 0.0
    with torch.no_grad():
        assert not torch.equal(G(z), G(z))


def test_laplacian_bands_reconstruct_the_image():
    x = torch.randn(2, 1, 28, 28)
    coarse, mid, fine = laplacian_bands(x, 3)
    assert coarse.shape[-1] == 7 and mid.shape[-1] == 14 and fine.shape[-1] == 28
    up = lambda t, k: torch.nn.functional.interpolate(t, scale_factor=k, mode='nearest')
    assert torch.allclose(up(coarse, 4) + up(mid, 2) + fine, x, atol=1e-6)
    G = small_generator(noise_scale=0.0).eval()
    assert noise_change_by_resolution(G, torch.randn(2, 8), n_draws=2) == [0.0, 0.0, 0.0]  # no noise, no change


def test_architecture_is_registered_with_the_dcgan_discriminator():
    G, D = build('stylegan', (1, 28, 28), width=16, latent_dim=8)
    assert isinstance(G, StyleGenerator) and isinstance(D, DCGANDiscriminator)
    assert G(torch.randn(2, 8)).shape == (2, 1, 28, 28)
    G32, _ = build('stylegan', (3, 32, 32), width=16, latent_dim=8)
    assert G32.synthesis.resolutions == [4, 4, 8, 8, 16, 16, 32, 32] and G32(torch.randn(2, 8)).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match='conditioning: expected none'):
        build('stylegan', (1, 28, 28), conditioning='labels', n_classes=10)
    with pytest.raises(ValueError, match=r'ws: expected shape \(N, 6, 8\)'):
        G.synthesis(torch.randn(2, 5, 8))


@pytest.fixture
def tiny_data(monkeypatch):
    import ganlab.data as gdata
    imgs = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    monkeypatch.setitem(gdata.datasets._items, 'tiny', lambda split='train', **kw: gdata.ImageTensors(imgs, torch.zeros(64, dtype=torch.long)))


ARGS = ['--data', 'tiny', '--arch', 'stylegan', '--width', '8', '--latent-dim', '8', '--batch-size', '8',
        '--eval-samples', '16', '--quiet']


def test_ganlab_train_stylegan_resumes_exactly(tmp_path, tiny_data, monkeypatch):
    "Mixing regularisation and the noise draw from the global generator, which the checkpoint restores."
    assert main(['--out', str(tmp_path / 'whole'), '--steps', '6', '--checkpoint-every', '6', *ARGS]) == 0
    fit = Trainer.fit
    monkeypatch.setattr(Trainer, 'fit', lambda self, steps: fit(self, min(steps, 3)))
    assert main(['--out', str(tmp_path / 'part'), '--steps', '6', '--checkpoint-every', '6', *ARGS]) == 0
    monkeypatch.setattr(Trainer, 'fit', fit)
    assert main(['--out', str(tmp_path / 'part'), '--resume', '--steps', '6', '--quiet']) == 0
    a = torch.load(tmp_path / 'whole' / 'checkpoint.pt', weights_only=False)
    b = torch.load(tmp_path / 'part' / 'checkpoint.pt', weights_only=False)
    assert a['step'] == b['step'] == 6
    for name in ('generator', 'discriminator'):
        assert all(torch.equal(a[name][k], b[name][k]) for k in a[name]), name
    assert a['generator']['w_avg'].abs().sum() > 0


def load_study_script():
    "data/benchmarks/modern/run.py as a module (the study cannot live in ganlab.stylegan: import cycle)."
    import importlib.util
    from pathlib import Path
    path = Path(__file__).parents[1] / 'data' / 'benchmarks' / 'modern' / 'run.py'
    spec = importlib.util.spec_from_file_location('modern_run', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_modern_study_gives_each_method_its_own_budget():
    script = load_study_script()
    modern_study, MODERN_METHODS = script.modern_study, script.MODERN_METHODS
    study = modern_study()
    assert modern_study() is study
    steps = {m: study.config(m, 'fashion-mnist', 0).steps for m in MODERN_METHODS}
    assert steps == {m: kw['steps'] for m, kw in MODERN_METHODS.items()}
    assert study.config('StyleGAN-lite', 'fashion-mnist', 0, steps=400).steps == 115  # scaled by 400/800
    assert study.config('progressive', 'fashion-mnist', 1).game == 'progressive'
