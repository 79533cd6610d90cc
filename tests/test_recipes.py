"Recipes: a configuration's defaults, its checks, and the networks it builds."
import json
import pytest
import torch
from torch import nn
from ganlab.data import ImageTensors, ring
from ganlab.recipes import TrainConfig, build_setup, build_game, build_run, game_recipes
from ganlab.train import main


def images(n=16):
    return ImageTensors(torch.zeros(n, 1, 28, 28, dtype=torch.uint8), torch.zeros(n, dtype=torch.long))


def norm_layers(module):
    return {type(m).__name__ for m in module.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm))}


@pytest.mark.parametrize('loss', ['wgan-gp', 'dragan'])
def test_gradient_penalty_critics_have_no_batch_norm(loss):
    "The penalty is per sample; batch norm couples the samples (Gulrajani et al.). Layer norm by default."
    D = build_setup(TrainConfig(arch='dcgan', loss=loss).resolved(), images()).D
    assert norm_layers(D) == {'GroupNorm'}
    x = torch.randn(4, 1, 28, 28)
    D.train()
    assert torch.allclose(D(x)[:2], D(x[:2]), atol=1e-5)           # a sample's score ignores its batch mates


def test_other_losses_keep_dcgan_batch_norm_and_the_choice_is_the_users():
    assert norm_layers(build_setup(TrainConfig(arch='dcgan', loss='nsgan').resolved(), images()).D) == {'BatchNorm2d'}
    D = build_setup(TrainConfig(arch='dcgan', loss='wgan-gp', d_norm='none').resolved(), images()).D
    assert norm_layers(D) == set()
    assert TrainConfig(loss='wgan-gp').resolved().d_norm == 'none'      # the MLP critic stays as it was


@pytest.mark.parametrize('field,value', [('steps', 0), ('lr_d', 0.), ('lr_g', -1e-4), ('n_critic', 0), ('latent_dim', 0),
                                         ('width', 0), ('checkpoint_every', -1), ('log_every', 0), ('eval_samples', -1),
                                         ('batch_size', 0), ('ema', 1.), ('betas', (0.5, 1.)), ('game', 'nope'),
                                         ('precision', 'fp8'), ('d_norm', 'group')])
def test_values_no_run_can_use_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f'^{field}: expected'):
        TrainConfig(**{field: value}).resolved()


@pytest.mark.parametrize('args', [['--steps', '0'], ['--lr-d', '0'], ['--n-critic', '0'], ['--latent-dim', '0'],
                                  ['--checkpoint-every', '-1'], ['--log-every', '0'], ['--width', '-1']])
def test_the_command_line_refuses_them_before_making_a_folder(tmp_path, capsys, args):
    assert main(['--out', str(tmp_path/'run'), '--quiet', *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    flag = args[0][2:].replace('-', '_')
    assert len(err) == 1 and err[0].startswith(f'ganlab-train: {flag}: expected'), err
    assert not (tmp_path/'run').exists()


def test_a_refused_resume_changes_nothing(tmp_path, capsys):
    run = tmp_path/'run'
    assert main(['--out', str(run), '--steps', '20', '--width', '16', '--batch-size', '32', '--quiet']) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main(['--out', str(run), '--resume', '--steps', '10', '--quiet']) == 2
    assert "steps: expected at least the checkpoint's step 20" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_game_recipe_plugs_in_by_name():
    "A new game registered by name is what train() builds; the standard one is 'adversarial'."
    cfg = TrainConfig(loss='cgan').resolved()
    game, callbacks = build_run(cfg, ring())
    assert type(game).__name__ == 'AdversarialGame' and game.conditioning.n_classes == 8 and callbacks == []
    assert 'adversarial' in game_recipes.names
    built = build_game(build_setup(cfg, ring()))
    assert sorted(built.state_dict()) == sorted(game.state_dict())


@pytest.mark.parametrize('damage', ['random', 'truncated', 'empty'])
def test_a_damaged_checkpoint_is_one_line_and_changes_nothing(tmp_path, capsys, damage):
    run = tmp_path/'run'
    assert main(['--out', str(run), '--steps', '10', '--width', '16', '--batch-size', '32', '--quiet']) == 0
    ckpt = run/'checkpoint.pt'
    data = ckpt.read_bytes()
    ckpt.write_bytes({'random': bytes(range(256)) * 4, 'truncated': data[:len(data) // 2], 'empty': b''}[damage])
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert main(['--out', str(run), '--resume', '--steps', '20', '--quiet']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('ganlab-train: checkpoint: expected a ganlab checkpoint'), err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_damaged_config_is_one_line(tmp_path, capsys):
    run = tmp_path/'run'
    assert main(['--out', str(run), '--steps', '10', '--width', '16', '--batch-size', '32', '--quiet']) == 0
    (run/'config.json').write_text('{"data": "ring8", ')
    assert main(['--out', str(run), '--resume', '--steps', '20', '--quiet']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('ganlab-train: config: expected'), err


def test_g_without_batch_norm_removes_g_norms_only_and_refuses_an_mlp(tmp_path, capsys):
    cfg = TrainConfig(data='mnist', arch='dcgan', width=8, tricks=('g_without_batch_norm',)).resolved()
    setup = build_setup(cfg, images())
    assert norm_layers(setup.G) == set() and norm_layers(setup.D) == {'BatchNorm2d'}
    z = torch.randn(4, setup.G.latent_dim)
    assert torch.allclose(setup.G(z)[:1], setup.G(z[:1]), atol=1e-6)       # no coupling through the batch
    assert main(['--trick', 'g_without_batch_norm', '--steps', '2', '--out', str(tmp_path/'r'), '--quiet']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'net: expected a network with BatchNorm layers to remove' in err[0] and not (tmp_path/'r').exists()
