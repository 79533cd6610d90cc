import os, random, signal, subprocess, sys, textwrap
import numpy as np, pytest, torch
from ganlab.core import check, get_device, seed_everything, rng_state, set_rng_state, Registry, atomic_save, atomic_write_text

def test_check_message_names_argument_expected_and_received():
    with pytest.raises(ValueError, match=r"^lam: expected a number >= 0, got -1$"): check(False, 'lam', 'a number >= 0', -1)
    check(True, 'lam', 'anything', -1)

def test_get_device():
    assert get_device('cpu') == torch.device('cpu')
    assert get_device(None) == get_device('auto') == (torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu'))
    with pytest.raises(ValueError, match='device'): get_device('toaster')
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: expected a visible CUDA GPU"): get_device('cuda')

def draw(): return random.random(), float(np.random.rand()), torch.rand(3).tolist()

def test_seed_everything_repeats_every_rng():
    seed_everything(7); a = draw()
    seed_everything(7); assert draw() == a
    seed_everything(8); assert draw() != a

@pytest.mark.parametrize('bad', [-1, 2**32, 1.5, '3', True])
def test_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match='seed'): seed_everything(bad)

def test_rng_state_round_trip():
    seed_everything(0); draw()
    s = rng_state(); after = draw()
    draw(); set_rng_state(s)
    assert draw() == after

def test_registry_normalises_names_and_lists_valid_ones():
    r = Registry('loss'); r.register('wgan-gp', 1)
    @r.register('NS_GAN')
    def f(): pass
    assert r['WGAN_GP'] == r['wgan gp'] == 1 and r['ns-gan'] is f and 'wgan_gp' in r
    assert r.names == ['ns_gan', 'wgan_gp']
    with pytest.raises(KeyError, match="unknown loss 'lsgan'; valid names: ns_gan, wgan_gp"): r['lsgan']
    with pytest.raises(KeyError, match='already registered'): r.register('wgan_gp', 2)
    def g(): pass
    with pytest.raises(KeyError, match='already registered'): r.register('ns-gan', g)      # another definition
    def f(): pass                                    # the same definition again (a notebook re-run): replaced
    assert r.register('ns-gan', f) is f and r['ns_gan'] is f

def test_atomic_save_leaves_no_temporary_files(tmp_path):
    atomic_save({'x': torch.ones(2)}, tmp_path/'a'/'c.pt')
    atomic_write_text(tmp_path/'t.txt', 'é')
    assert torch.load(tmp_path/'a'/'c.pt')['x'].tolist() == [1, 1]
    assert (tmp_path/'t.txt').read_text(encoding='utf-8') == 'é'
    assert [p.name for p in (tmp_path/'a').iterdir()] == ['c.pt']

def test_atomic_save_survives_sigkill_mid_write(tmp_path):
    "A writer killed while saving leaves the previous checkpoint intact and loadable."
    target = tmp_path/'ckpt.pt'
    atomic_save({'step': 1, 'w': torch.zeros(10)}, target)
    script = textwrap.dedent(f"""
        import torch, os, signal
        from ganlab.core import atomic_save
        class Bomb:                        # pickling it kills the process halfway through the write
            def __reduce__(self): os.kill(os.getpid(), signal.SIGKILL)
        atomic_save({{'step': 2, 'w': torch.ones(10**6), 'bomb': Bomb()}}, {str(target)!r})
    """)
    r = subprocess.run([sys.executable, '-c', script])
    assert r.returncode == -signal.SIGKILL
    state = torch.load(target)
    assert state['step'] == 1 and torch.equal(state['w'], torch.zeros(10))


# --- checkpoints that prove they are intact (issue 13) ---------------------------------------------------
import warnings
from pathlib import Path
from ganlab.core import (save_checkpoint, load_checkpoint, state_checksum, CommandLineParser, integer, number,
                         unwritable_reason, one_line_warnings)


def refused(main, argv, capsys) -> str:
    """Run a command line that must be refused: exit status 2, exactly one line on stderr, no traceback.
    Returns the line. Shared by the CLI tests of test_train, test_evaluation and test_bench."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # refused by the argument parser
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def snapshot(folder) -> dict:
    "Every file under `folder` (path -> bytes): compare before and after to show a refused command changed nothing."
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob('*')) if p.is_file()}


def weights_state():
    return {'step': 7, 'generator': {'w': torch.linspace(-1, 1, 64)}, 'rng': (3, (1, 2), None), 'name': 'ring8'}


def test_checkpoint_round_trip_keeps_one_ordinary_torch_file(tmp_path):
    state = weights_state()
    save_checkpoint(state, tmp_path/'c.pt')
    raw = torch.load(tmp_path/'c.pt', weights_only=False)
    assert raw['sha256'] == state_checksum(state) and len(raw['sha256']) == 64
    loaded = load_checkpoint(tmp_path/'c.pt')
    assert 'sha256' not in loaded and loaded['step'] == 7 and torch.equal(loaded['generator']['w'], state['generator']['w'])
    assert [p.name for p in tmp_path.iterdir()] == ['c.pt']           # no sidecar, no temporary file


def flip_bit_in_tensor_data(path, tensor: torch.Tensor, bit: int = 0) -> None:
    "Flip one bit of the last element of `tensor`'s bytes where they are stored in the file at `path`."
    blob = bytearray(Path(path).read_bytes())
    data = tensor.numpy().tobytes()
    at = bytes(blob).find(data)
    assert at >= 0 and bytes(blob).find(data, at + 1) < 0        # the tensor's data, stored once, verbatim
    blob[at + len(data) - tensor.element_size()] ^= 1 << bit
    Path(path).write_bytes(bytes(blob))


def test_a_flipped_bit_inside_a_weight_tensor_is_refused_naming_the_file(tmp_path):
    state = weights_state()
    save_checkpoint(state, tmp_path/'c.pt')
    flip_bit_in_tensor_data(tmp_path/'c.pt', state['generator']['w'])
    silently = torch.load(tmp_path/'c.pt', weights_only=False)['generator']['w']
    assert not torch.equal(silently, state['generator']['w'])        # torch itself loads the damage
    with pytest.raises(ValueError, match=r'^checkpoint: expected the content whose sha256 is stored in .*c\.pt, got'):
        load_checkpoint(tmp_path/'c.pt')


def test_the_digest_covers_numbers_strings_and_tuples_not_only_tensors():
    base = state_checksum(weights_state())
    for change in ({'step': 8}, {'rng': (3, (1, 3), None)}, {'name': 'ring9'}, {'rng': [3, (1, 2), None]}):
        assert state_checksum({**weights_state(), **change}) != base, change
    bf16 = {'w': torch.ones(3, dtype=torch.bfloat16)}
    assert state_checksum(bf16) != state_checksum({'w': torch.ones(3)})  # dtype counts; bf16 hashes too


def test_a_checkpoint_without_a_digest_loads_with_a_warning(tmp_path):
    atomic_save(weights_state(), tmp_path/'old.pt')                    # as ganlab wrote them before digests
    with pytest.warns(UserWarning, match='carries no sha256 digest'):
        assert load_checkpoint(tmp_path/'old.pt')['step'] == 7


@pytest.mark.parametrize('damage', ['empty', 'truncated', 'random', 'a list'])
def test_unreadable_checkpoints_are_a_value_error_naming_the_file(tmp_path, damage):
    path = tmp_path/'c.pt'
    save_checkpoint(weights_state(), path)
    blob = path.read_bytes()
    contents = {'empty': b'', 'truncated': blob[:len(blob) // 2], 'random': os.urandom(2000), 'a list': None}
    if damage == 'a list':
        torch.save([1, 2], path)
    else:
        path.write_bytes(contents[damage])
    with pytest.raises(ValueError, match=rf'^checkpoint: expected a ganlab checkpoint in {path}, got'):
        load_checkpoint(path)


def test_get_device_refuses_a_cpu_index():
    assert get_device('cpu:0') == torch.device('cpu:0')
    with pytest.raises(ValueError, match=r"^device: expected 'cpu' \(one CPU device"):
        get_device('cpu:99')


def test_command_line_parser_answers_in_one_line(capsys):
    parser = CommandLineParser(prog='demo')
    parser.add_argument('--samples', type=integer(1, 100))
    parser.add_argument('--lr', type=number)
    parser.add_argument('name')
    cases = {('x', '--samples', '1e10'): "demo: --samples: expected an integer in [1, 100], got '1e10'",
             ('x', '--samples', '0'): "demo: --samples: expected an integer in [1, 100], got '0'",
             ('x', '--lr', 'nan'): "demo: --lr: expected a finite number, got 'nan'",
             (): 'demo: name: expected a value, got nothing',
             ('x', '--bogus'): 'demo: arguments: expected only the options of --help, got --bogus'}
    for argv, line in cases.items():
        assert refused(parser.parse_args, list(argv), capsys) == line
    assert parser.parse_args(['x', '--samples', '100', '--lr', '1e-3']).samples == 100


def test_one_line_warnings(capsys):
    with one_line_warnings('demo'):
        warnings.warn('careful\nnow')
    assert capsys.readouterr().err == 'demo: warning: careful now\n'


def test_unwritable_reason(tmp_path, monkeypatch):
    (tmp_path/'f').write_text('x')
    assert unwritable_reason(tmp_path/'new'/'run') is None
    assert unwritable_reason(tmp_path/'f'/'sub').endswith('f is a file)')
    monkeypatch.setattr(os, 'access', lambda *a, **k: False)          # a read-only folder, even when run as root
    assert unwritable_reason(tmp_path/'run').endswith('is not writable by this user)')
