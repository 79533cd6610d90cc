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
