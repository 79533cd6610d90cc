"Image-to-image translation (nbs/42_translation.ipynb): networks, losses, buffer, games, recipes and data."
import io
import json
import math
import pytest
import torch
from torch import nn
from ganlab import data as gdata
from ganlab.recipes import TrainConfig, game_recipes
from ganlab.trainer import Trainer
from ganlab.translation import (
    UNet, UNetSkipBlock, PatchDiscriminator, receptive_field, pix2pix_d_loss, pix2pix_g_loss, cycle_loss,
    identity_loss, ImageBuffer, Pix2PixGame, CycleGANGame, PairedImages, UnpairedImages, sobel_edges, dilate,
    sharpness, high_frequency_energy, translation_metrics, unet_pair, edges2fashion, thin2bold,
)


def tiny_images(n, channels=1, size=8, seed=0):
    return torch.randint(0, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def tiny_pairs(n=32, c_in=1, c_out=1, size=8):
    x = tiny_images(n, c_in, size, 1)
    y = tiny_images(n, c_out, size, 2)
    labels = torch.zeros(n, dtype=torch.long)
    return PairedImages(x, y, labels, (x, y, labels), 'tiny-pairs')


def tiny_domains(n=32, c_x=1, c_y=1, size=8):
    x = tiny_images(n, c_x, size, 3)
    y = tiny_images(n, c_y, size, 4)
    labels = torch.zeros(n, dtype=torch.long)
    return UnpairedImages(x, y, labels, (x, y, labels), 'tiny-domains')


gdata.datasets.register('tiny-pairs', lambda split='train', **kw: tiny_pairs(size=8))


# --- networks -------------------------------------------------------------------------------------------

def test_unet_keeps_the_size_and_maps_channels():
    G = UNet(in_channels=1, out_channels=3, width=4, depth=2)
    out = G(torch.randn(2, 1, 28, 28))
    assert out.shape == (2, 3, 28, 28)
    assert out.abs().max() <= 1


def test_skip_block_concatenates_its_input():
    block = UNetSkipBlock(4, 8, dropout=0.0).eval()
    h = torch.randn(2, 4, 8, 8)
    out = block(h)
    assert out.shape == (2, 8, 8, 8)
    assert torch.equal(out[:, :4], h)  # the skip: the input goes across unchanged


def test_skip_connection_carries_detail_past_the_bottleneck():
    "The output at a pixel depends on the input at that pixel through the skip, not only via the bottleneck."
    G = UNet(1, 1, width=4, depth=2).eval()
    x = torch.zeros(1, 1, 8, 8, requires_grad=True)
    G(x)[0, 0, 3, 3].backward()
    assert x.grad[0, 0, 3, 3] != 0


def test_unet_bad_input_names_the_argument():
    G = UNet(1, 1, width=4, depth=2)
    with pytest.raises(ValueError, match=r'^x: expected images \(N, 1, H, W\)'):
        G(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ValueError, match=r'^x: expected height and width multiples of 2\*\*depth = 4'):
        G(torch.zeros(1, 1, 30, 30))
    with pytest.raises(ValueError, match=r'^width: expected a positive integer'):
        UNet(1, 1, width=0)


def test_patchgan_receptive_fields():
    assert receptive_field(PatchDiscriminator(6, 64, n_layers=3)) == 70
    assert receptive_field(PatchDiscriminator(2, 32, n_layers=1)) == 16
    assert receptive_field(nn.Conv2d(1, 1, 5, 1)) == 5
    assert PatchDiscriminator(2, 8, 1)(torch.zeros(2, 2, 28, 28)).shape == (2, 1, 12, 12)
    with pytest.raises(ValueError, match=r'^images: expected \(N, 2, H, W\)'):
        PatchDiscriminator(2, 8, 1)(torch.zeros(2, 1, 28, 28))


def test_measured_receptive_field_equals_the_formula():
    D = PatchDiscriminator(1, 4, n_layers=1).eval()
    x = torch.randn(1, 1, 28, 28, requires_grad=True)
    D(x)[0, 0, 6, 6].backward()
    rows, cols = (x.grad[0, 0] != 0).nonzero().unbind(1)
    assert int(rows.max() - rows.min()) + 1 == receptive_field(D)
    assert int(cols.max() - cols.min()) + 1 == receptive_field(D)


# --- losses ---------------------------------------------------------------------------------------------

def test_pix2pix_losses_closed_forms():
    zero = torch.zeros(3, 1, 4, 4)
    target = torch.zeros(3, 1, 8, 8)
    total, adv, l1 = pix2pix_g_loss(zero, target + 0.5, target, lam=100.0)
    assert torch.isclose(adv, torch.tensor(math.log(2)))
    assert l1 == 0.5
    assert torch.isclose(total, torch.tensor(math.log(2) + 50))
    total, adv, l1 = pix2pix_g_loss(None, target + 0.5, target, lam=100.0, adversarial=None)
    assert adv == 0 and total == 50
    assert torch.isclose(pix2pix_d_loss(zero, zero), torch.tensor(math.log(2)))
    assert pix2pix_d_loss(torch.ones(4), torch.zeros(4), 'lsgan') == 0
    assert pix2pix_d_loss(torch.zeros(4), torch.ones(4), 'lsgan') == 1  # ½(1 + 1)
    with pytest.raises(ValueError, match=r'^target: expected the shape of the output'):
        pix2pix_g_loss(zero, target, torch.zeros(3, 1, 4, 4))


def test_cycle_loss_is_zero_for_inverse_maps_and_identity_loss_for_the_identity():
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    y = torch.rand(5, 3, 8, 8) * 2 - 1
    assert cycle_loss(x, (x * 2) / 2, y, y.flip(-1).flip(-1)) == 0
    assert identity_loss(x, x.clone(), y, y.clone()) == 0
    assert torch.isclose(cycle_loss(x, x + 0.1, y, y - 0.2), torch.tensor(0.3))
    with pytest.raises(ValueError, match=r'^x_cycled: expected the shape of x'):
        cycle_loss(x, y, y, y)
    with pytest.raises(ValueError, match=r'^G_of_y: expected the shape of y'):
        identity_loss(x, x, y, x)


def test_sharpness():
    real = torch.rand(10, 1, 16, 16) * 2 - 1
    assert sharpness(real, real) == 1
    assert high_frequency_energy(torch.ones(2, 3, 8, 8)) == 0
    blurred = torch.nn.functional.avg_pool2d(real, 3, 1, 1)
    assert sharpness(blurred, real) < 0.5
    m = translation_metrics(real, real)
    assert m == dict(l1=0.0, sharpness=1.0)


# --- the history buffer ---------------------------------------------------------------------------------

def numbered(start, n):
    "n images of shape (1, 2, 2), image i filled with the number start + i."
    return torch.arange(start, start + n, dtype=torch.float32)[:, None, None, None].expand(n, 1, 2, 2)


def test_buffer_returns_new_images_while_filling():
    buffer = ImageBuffer(50, seed=0)
    first = numbered(0, 30)
    assert torch.equal(buffer.query(first), first)
    assert len(buffer.images) == 30
    assert torch.equal(ImageBuffer(0).query(first), first)


def test_buffer_returns_stored_images_with_probability_one_half_once_full():
    "Binomial proportion of 40,000 queries: standard error 0.0025; the test allows 4 of them, 0.01."
    buffer = ImageBuffer(50, seed=1)
    buffer.query(numbered(0, 50))
    n = 40_000
    incoming = numbered(50, n)
    returned = torch.cat([buffer.query(batch) for batch in incoming.split(400)])
    swapped = returned[:, 0, 0, 0] != incoming[:, 0, 0, 0]
    assert abs(swapped.double().mean().item() - 0.5) < 4 * math.sqrt(0.25 / n)
    # what comes back from the pool was stored before: an earlier number
    assert (returned[swapped, 0, 0, 0] < incoming[swapped, 0, 0, 0]).all()
    assert len(buffer.images) == 50


def test_buffer_state_survives_a_round_trip():
    a = ImageBuffer(10, seed=3)
    a.query(numbered(0, 25))
    blob = io.BytesIO()
    torch.save(a.state_dict(), blob)
    b = ImageBuffer(10, seed=99)
    b.load_state_dict(torch.load(io.BytesIO(blob.getvalue()), weights_only=False))
    assert torch.equal(a.query(numbered(100, 40)), b.query(numbered(100, 40)))
    with pytest.raises(ValueError, match=r'^state: expected a buffer of size 5'):
        ImageBuffer(5).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match=r'^images: expected images of shape \(1, 2, 2\)'):
        a.query(torch.zeros(3, 1, 4, 4))


# --- games and exact resume -----------------------------------------------------------------------------

def pix2pix_game(c_in=1, c_out=1, adversarial='nsgan'):
    torch.manual_seed(0)
    G = UNet(c_in, c_out, width=4, depth=2)
    D = PatchDiscriminator(c_in + c_out, width=4, n_layers=1)
    opt = lambda m: torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999))
    return Pix2PixGame(G, D, opt(G), opt(D), 100.0, adversarial)


def cyclegan_game(buffer_size=3, lam_identity=None):
    torch.manual_seed(0)
    G, F = UNet(1, 1, 4, 2), UNet(1, 1, 4, 2)
    D_X, D_Y = PatchDiscriminator(1, 4, 1), PatchDiscriminator(1, 4, 1)
    game = CycleGANGame(G, F, D_X, D_Y, buffer_size=buffer_size, lam_identity=lam_identity)
    opt = lambda m: torch.optim.Adam(m.parameters(), 2e-4, betas=(0.5, 0.999))
    return game.set_optimizers(opt(game.generators), opt(game.discriminators))


def same_state(a: dict, b: dict) -> bool:
    "Bit-for-bit equality of two nested states (tensors, dicts, lists, numbers)."
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_state(u, v) for u, v in zip(a, b))
    if torch.is_tensor(a):
        return torch.equal(a, b)
    return a == b


@pytest.mark.parametrize('make, data', [(pix2pix_game, tiny_pairs), (cyclegan_game, tiny_domains)])
def test_two_n_steps_equal_n_steps_checkpoint_and_resume(make, data):
    n = 4
    straight = Trainer(make(), data(), batch_size=2, device='cpu', seed=5).fit(2 * n)
    first = Trainer(make(), data(), batch_size=2, device='cpu', seed=5).fit(n)
    blob = io.BytesIO()
    torch.save(first.state_dict(), blob)
    resumed = Trainer(make(), data(), batch_size=2, device='cpu', seed=5)
    resumed.load_state_dict(torch.load(io.BytesIO(blob.getvalue()), weights_only=False))
    resumed.fit(2 * n)
    a, b = straight.state_dict(), resumed.state_dict()
    for key in ('rng',):
        a.pop(key)
        b.pop(key)
    assert same_state(a, b)
    if make is cyclegan_game:
        assert len(straight.game.buffer_y.images) == 3  # the buffer filled and swapped, and resumed too
        assert same_state(straight.game.extra_state(), resumed.game.extra_state())


def test_games_record_their_losses():
    t = Trainer(cyclegan_game(), tiny_domains(), batch_size=2, device='cpu', seed=0).fit(1)
    assert set(t.logs['generators']) == {'g_loss', 'adversarial', 'cycle', 'identity'}
    assert set(t.logs['discriminators']) == {'d_loss', 'd_y', 'd_x'}
    t = Trainer(pix2pix_game(adversarial=None), tiny_pairs(), batch_size=2, device='cpu', seed=0).fit(1)
    assert 'discriminator' not in t.logs  # L1 only: D never trained
    assert t.logs['generator']['adversarial'] == 0


def test_l1_only_leaves_the_discriminator_untouched():
    game = pix2pix_game(adversarial=None)
    before = [p.clone() for p in game.D.parameters()]
    Trainer(game, tiny_pairs(), batch_size=2, device='cpu', seed=0).fit(2)
    assert all(torch.equal(p, q) for p, q in zip(before, game.D.parameters()))


def test_mismatched_domains_and_channels_give_one_clear_line():
    G, F = UNet(1, 3, 4, 2), UNet(3, 1, 4, 2)
    with pytest.raises(ValueError, match=r'^D_Y: expected 3 input channels \(Y\), got 1$'):
        CycleGANGame(G, F, PatchDiscriminator(1, 4), PatchDiscriminator(1, 4), lam_identity=0)
    with pytest.raises(ValueError, match=r'^F: expected a map from Y \(3 channels\), got 1$'):
        CycleGANGame(G, UNet(1, 1, 4, 2), PatchDiscriminator(1, 4), PatchDiscriminator(3, 4), lam_identity=0)
    with pytest.raises(ValueError, match=r'^lam_identity: expected 0 when X and Y have different channel counts'):
        CycleGANGame(G, F, PatchDiscriminator(1, 4), PatchDiscriminator(3, 4))
    with pytest.raises(ValueError, match=r'^discriminator: expected 4 input channels \(input 1 \+ output 3\), got 2$'):
        Pix2PixGame(G, PatchDiscriminator(2, 4), None, None)
    game = pix2pix_game(c_in=1, c_out=1)
    with pytest.raises(ValueError, match=r'^targets: expected images \(N, 1, H, W\), got \(2, 3, 8, 8\)$'):
        Trainer(game, tiny_pairs(c_out=3), batch_size=2, device='cpu').fit(1)
    with pytest.raises(ValueError, match=r'^y: expected images \(N, 1, H, W\), got \(2, 3, 8, 8\)$'):
        Trainer(cyclegan_game(), tiny_domains(c_y=3), batch_size=2, device='cpu').fit(1)
    with pytest.raises(ValueError, match=r'^targets: expected 32 images of size \(8, 8\)'):
        PairedImages(tiny_images(32), tiny_images(31), torch.zeros(32), None)
    with pytest.raises(ValueError, match=r'^targets: expected images of size \(8, 8\) like the inputs'):
        UnpairedImages(tiny_images(32), tiny_images(32, size=4), torch.zeros(32), None)


# --- recipes and ganlab-train ---------------------------------------------------------------------------

def test_recipes_are_registered_and_refuse_other_architectures():
    for name in ('pix2pix', 'pix2pix-l1', 'cyclegan', 'cyclegan-no-identity', 'cyclegan-no-buffer'):
        assert name in game_recipes
    with pytest.raises(ValueError, match=r"^arch: expected 'unet' for --game pix2pix, got 'dcgan'$"):
        game_recipes['pix2pix'](TrainConfig(game='pix2pix', arch='dcgan').resolved(), tiny_pairs())
    with pytest.raises(ValueError, match=r"^data: expected a translation data set"):
        game_recipes['cyclegan'](TrainConfig(game='cyclegan', arch='unet', loss='lsgan', data='tiny-pairs').resolved(),
                                 gdata.load('ring8'))
    with pytest.raises(ValueError, match=r"^arch: expected 'mlp' or 'dcgan' for the adversarial game"):
        unet_pair((1, 28, 28), g_extra=0)
    game, _ = game_recipes['cyclegan-no-buffer'](TrainConfig(game='cyclegan', arch='unet', width=4).resolved(),
                                                tiny_domains())
    assert game.buffer_x.size == 0 and game.lam == 10 and game.lam_identity == 5
    game, _ = game_recipes['pix2pix-l1'](TrainConfig(game='pix2pix', arch='unet', width=4).resolved(), tiny_pairs())
    assert game.adversarial is None and game.lam == 100


def test_ganlab_train_writes_a_run_folder(tmp_path):
    from ganlab.train import main
    out = tmp_path / 'run'
    code = main(['--game', 'pix2pix', '--arch', 'unet', '--data', 'tiny-pairs', '--width', '4', '--steps', '4',
                 '--batch-size', '4', '--checkpoint-every', '2', '--log-every', '1', '--eval-samples', '16',
                 '--out', str(out), '--quiet'])
    assert code == 0
    for name in ('config.json', 'history.csv', 'samples.png', 'metrics.json', 'checkpoint.pt'):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / 'samples').iterdir()) == ['step_000002.png', 'step_000004.png']
    metrics = json.loads((out / 'metrics.json').read_text())
    assert metrics['step'] == 4 and {'l1', 'sharpness'} <= metrics.keys()
    assert 'd_loss' in (out / 'history.csv').read_text().splitlines()[0]
    assert main(['--out', str(out), '--resume', '--steps', '6', '--quiet']) == 0
    assert json.loads((out / 'metrics.json').read_text())['step'] == 6


# --- the data sets --------------------------------------------------------------------------------------

def test_edges_and_dilation_closed_forms():
    square = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    square[..., 2:6, 2:6] = 255
    edges = sobel_edges(square)
    assert edges[0, 0, 0, 0] == 0 and edges[0, 0, 4, 4] == 0  # flat regions have no edge
    assert edges[0, 0, 2, 3] == 255                            # the square's border does
    bold = dilate(square)
    assert int((bold > 0).sum()) == 36                         # 4×4 grows to 6×6
    with pytest.raises(ValueError, match=r'^images: expected a uint8 tensor of shape \(N, 1, H, W\)'):
        sobel_edges(square.float())


def test_edges2fashion_pairs_are_edges_of_their_images():
    data = edges2fashion(split='test')
    x, y = data.sample(8, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 1, 28, 28)
    y_uint8 = ((y + 1) * 127.5).round().to(torch.uint8)
    assert torch.equal(gdata.to_unit_range(sobel_edges(y_uint8)), x)
    inputs, targets, labels = data.scoring(5)
    assert inputs.shape == targets.shape == (5, 1, 28, 28) and labels.shape == (5,)
    assert data.evaluator == 'fashion-mnist'


def test_thin2bold_domains_are_disjoint_and_unpaired():
    data = thin2bold()
    assert len(data.inputs) == len(data.targets) == 2500 and len(data.held_out[0]) == 5000
    # the bold domain holds other digits: no bold image is the dilation of a thin one
    thin_dilated = {bytes(t.numpy()) for t in dilate(data.inputs)}
    assert not any(bytes(t.numpy()) in thin_dilated for t in data.targets)
    x, y, _ = data.held_out
    assert torch.equal(dilate(x), y)  # scoring knows the true counterpart
    a, b = data.sample(16, generator=torch.Generator().manual_seed(0))
    assert a.shape == b.shape == (16, 1, 28, 28)
    assert not torch.equal(dilate(((a + 1) * 127.5).round().to(torch.uint8)), ((b + 1) * 127.5).round().to(torch.uint8))
    assert data.evaluator == 'mnist'
