import csv, json, os, re, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from ganlab.train import main, train, TrainConfig, Trainer, prepare_run_dir, RUN_FILES, NonFiniteStop, Checkpoint, Callback

SCRIPT = str(Path(sys.executable).parent/'ganlab-train')      # the console script installed with the package
ENV = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1'}   # subprocesses share the CPU with xdist workers
SMALL = ['--width', '32', '--batch-size', '64', '--log-every', '10', '--checkpoint-every', '50', '--quiet']

def weights(run):
    s = torch.load(Path(run)/'checkpoint.pt', weights_only=False)
    return s['step'], {**{f'G.{k}': v for k, v in s['generator'].items()}, **{f'D.{k}': v for k, v in s['discriminator'].items()}}

def history(run):
    with open(Path(run)/'history.csv', newline='') as f:
        return [{k: v for k, v in r.items() if k != 'seconds'} for r in csv.DictReader(f)]

def test_default_command_trains_the_ring_offline(tmp_path):
    "`ganlab-train` with no arguments: the README's main job."
    r = subprocess.run([SCRIPT], cwd=tmp_path, capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr
    run = tmp_path/'runs'/'ring8-nsgan-1'
    assert sorted(p.name for p in run.iterdir()) == sorted(RUN_FILES)
    m = json.loads((run/'metrics.json').read_text())
    assert m['step'] == 3000 and m['samples'] == 2500 and m['n_modes'] == 8
    assert m['modes'] >= 7 and m['high_quality'] >= 0.5, m           # measured: 8/8 modes, ~77% high quality
    cfg = json.loads((run/'config.json').read_text())
    assert (cfg['loss'], cfg['optimizer'], cfg['lr_g'], cfg['betas'], cfg['n_critic']) == ('nsgan', 'adam', 2e-4, [0.5, 0.999], 1)
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith('ganlab-train: ring8 · nsgan · 3000 steps in') and f"modes {m['modes']}/8" in last and str(run.relative_to(tmp_path)) in last
    assert (run/'samples.png').read_bytes()[:4] == b'\x89PNG' and len(list((run/'samples').iterdir())) == 6
    rows = history(run)
    assert [int(r['step']) for r in rows] == list(range(50, 3001, 50)) and {'d_loss', 'g_loss', 'd_real', 'd_fake'} <= set(rows[0])
    # a second default run goes to a new folder instead of touching the first
    r2 = subprocess.run([SCRIPT, '--steps', '10', '--quiet'], cwd=tmp_path, capture_output=True, text=True, env=ENV)
    assert r2.returncode == 0 and (tmp_path/'runs'/'ring8-nsgan-2'/'metrics.json').exists()

def test_resume_matches_an_uninterrupted_run(tmp_path):
    assert main(['--out', str(tmp_path/'whole'), '--steps', '150', *SMALL]) == 0
    assert main(['--out', str(tmp_path/'part'), '--steps', '100', *SMALL]) == 0
    assert main(['--out', str(tmp_path/'part'), '--resume', '--steps', '150', '--quiet']) == 0
    (sw, w), (sp, p) = weights(tmp_path/'whole'), weights(tmp_path/'part')
    assert sw == sp == 150 and w.keys() == p.keys()
    for k in w: assert torch.allclose(w[k], p[k], atol=1e-6, rtol=0), k
    assert history(tmp_path/'whole') == history(tmp_path/'part')

def test_resume_from_an_older_checkpoint_drops_later_history(tmp_path):
    run = tmp_path/'r'
    assert main(['--out', str(run), '--steps', '80', '--width', '16', '--log-every', '10', '--checkpoint-every', '50', '--quiet']) == 0
    s = torch.load(run/'checkpoint.pt', weights_only=False)
    # pretend the process died at step 70: the checkpoint on disk is then the one from step 50
    assert main(['--out', str(tmp_path/'r50'), '--steps', '50', '--width', '16', '--log-every', '10', '--checkpoint-every', '50', '--quiet']) == 0
    (run/'checkpoint.pt').write_bytes((tmp_path/'r50'/'checkpoint.pt').read_bytes())
    assert main(['--out', str(run), '--resume', '--steps', '80', '--quiet']) == 0
    assert [int(r['step']) for r in history(run)] == list(range(10, 81, 10))
    assert torch.equal(torch.load(run/'checkpoint.pt', weights_only=False)['generator']['net.0.0.weight'], s['generator']['net.0.0.weight'])

def test_sigkill_never_leaves_a_corrupt_checkpoint(tmp_path):
    run = tmp_path/'k'
    p = subprocess.Popen([SCRIPT, '--out', str(run), '--steps', '100000', '--width', '16',
                          '--checkpoint-every', '1', '--log-every', '1', '--quiet'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 120
    while not (run/'checkpoint.pt').exists() and time.time() < deadline: time.sleep(0.2)
    time.sleep(1.5)                                # mid-run, with checkpoints being rewritten every step
    p.send_signal(signal.SIGKILL); p.wait()
    step = torch.load(run/'checkpoint.pt', weights_only=False)['step']
    assert step > 0
    assert main(['--out', str(run), '--resume', '--steps', str(step + 5), '--quiet', ]) == 0
    assert torch.load(run/'checkpoint.pt', weights_only=False)['step'] == step + 5

def test_existing_run_folders_are_protected(tmp_path, capsys):
    run = tmp_path/'r'
    assert main(['--out', str(run), '--steps', '5', '--quiet']) == 0
    assert main(['--out', str(run), '--steps', '5', '--quiet']) == 2
    assert 'already holds files; pass --resume' in capsys.readouterr().err
    before = (run/'checkpoint.pt').read_bytes()
    assert main(['--out', str(run), '--steps', '7', '--overwrite', '--quiet']) == 0
    assert torch.load(run/'checkpoint.pt', weights_only=False)['step'] == 7 and (run/'checkpoint.pt').read_bytes() != before
    (run/'thesis.tex').write_text('precious')
    assert main(['--out', str(run), '--steps', '5', '--overwrite', '--quiet']) == 2
    assert "expected a ganlab run folder (only run files) to overwrite" in capsys.readouterr().err and (run/'thesis.tex').exists()
    assert main(['--out', str(tmp_path/'none'), '--resume', '--quiet']) == 2
    assert 'checkpoint.pt to resume' in capsys.readouterr().err

def test_resume_refuses_a_different_configuration(tmp_path, capsys):
    run = tmp_path/'r'
    assert main(['--out', str(run), '--steps', '5', '--quiet']) == 0
    assert main(['--out', str(run), '--resume', '--steps', '6', '--loss', 'lsgan', '--quiet']) == 2
    assert "these options differ" in capsys.readouterr().err

def test_bad_options_are_named(tmp_path, capsys):
    assert main(['--out', str(tmp_path/'a'), '--loss', 'nonsense', '--quiet']) == 2
    assert "unknown loss 'nonsense'; valid names:" in capsys.readouterr().err
    assert main(['--out', str(tmp_path/'b'), '--batch-size', '0', '--quiet']) == 2
    assert 'batch_size: expected a positive integer <= 65536, got 0' in capsys.readouterr().err
    assert main(['--out', str(tmp_path/'c'), '--device', 'tpu', '--quiet']) == 2
    assert 'device: expected' in capsys.readouterr().err

def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit): main(['--help'])
    out = capsys.readouterr().out
    for flag in ['--data', '--arch', '--loss', '--steps', '--batch-size', '--n-critic', '--lr-g', '--lr-d', '--seed', '--out', '--resume', '--overwrite', '--device']:
        assert flag in out, flag

def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    import ganlab.train as T
    class Poison(Callback):
        def after_step(self, tr):
            if tr.step == 23:
                with torch.no_grad(): [p.fill_(float('nan')) for p in tr.game.D.parameters()]
    real_init = T.Trainer.__init__
    def init(self, *a, **k):
        real_init(self, *a, **k); self.callbacks = sorted(self.callbacks + [Poison()], key=lambda c: c.order)
    monkeypatch.setattr(T.Trainer, '__init__', init)
    run = tmp_path/'nan'
    assert main(['--out', str(run), '--steps', '100', '--checkpoint-every', '10', '--quiet']) == 1
    assert 'non-finite loss at step 24' in capsys.readouterr().err
    s = torch.load(run/'checkpoint.pt', weights_only=False)
    assert s['step'] == 20 and all(torch.isfinite(v).all() for v in s['discriminator'].values())
    assert not (run/'metrics.json').exists()

from types import SimpleNamespace
from ganlab.train import EMA, Diagnostics

def test_resume_with_ema_matches_an_uninterrupted_run(tmp_path):
    args = [*SMALL, '--ema', '0.9']
    assert main(['--out', str(tmp_path/'whole'), '--steps', '120', *args]) == 0
    assert main(['--out', str(tmp_path/'part'), '--steps', '100', *args]) == 0
    assert main(['--out', str(tmp_path/'part'), '--resume', '--steps', '120', '--quiet']) == 0
    a, b = (torch.load(tmp_path/r/'checkpoint.pt', weights_only=False)['callbacks']['EMA'] for r in ('whole', 'part'))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6, rtol=0) for k in a)
    g = torch.load(tmp_path/'whole'/'checkpoint.pt', weights_only=False)['generator']
    assert any(not torch.equal(a[k], g[k]) for k in a)            # the average differs from the last iterate

def test_ema_update_rule():
    G = torch.nn.Linear(2, 1); cb = EMA(0.75); tr = SimpleNamespace(game=SimpleNamespace(G=G))
    cb.before_fit(tr)
    before = {k: v.clone() for k, v in cb.model.state_dict().items()}
    with torch.no_grad(): [p.add_(1.) for p in G.parameters()]
    cb.after_g_step(tr)
    for k, v in cb.model.state_dict().items(): assert torch.allclose(v, 0.75 * before[k] + 0.25 * G.state_dict()[k])
    assert tr.game.G_eval is cb.model
    with pytest.raises(ValueError, match='^beta: expected a number in \\(0, 1\\)'): EMA(1.0)

def fake_trainer(step, d_loss, g_loss, d_stats=None, g_stats=None):
    d = dict(d_loss=torch.tensor(d_loss), **{k: torch.tensor(v) for k, v in (d_stats or {}).items()})
    g = dict(g_loss=torch.tensor(g_loss), **{k: torch.tensor(v) for k, v in (g_stats or {}).items()})
    return SimpleNamespace(step=step, logs=dict(discriminator=d, generator=g))

def run_diag(rows, **kw):
    msgs = []; diag = Diagnostics(every=1, warmup=10**9, report=msgs.append, **kw)
    for i, r in enumerate(rows, 1): diag.after_step(fake_trainer(i, *r))
    return msgs, diag

def test_diagnostics_vanishing_gradients_reported_once():
    rows = [(1.0, 1.0, None, {'g_grad_norm': 1.0})] * 3 + [(1.0, 1.0, None, {'g_grad_norm': 5e-3})] * 4
    msgs, diag = run_diag(rows)
    assert len(msgs) == 1 and "step 4: vanishing gradients: G's gradient norm is 5.00e-03" in msgs[0]
    assert diag.found[0]['kind'] == 'vanishing gradients' and diag.found[0]['step'] == 4
    assert run_diag([(1.0, 1.0, None, {'g_grad_norm': 1.0})] * 3 + [(1.0, 1.0, None, {'g_grad_norm': 2e-2})])[0] == []

def test_diagnostics_d_loss_spike():
    calm = [(1.0 + 0.01 * (-1) ** i, 1.0) for i in range(20)]
    msgs, _ = run_diag(calm + [(1.5, 1.0)])
    assert len(msgs) == 1 and 'D loss spike: 1.5' in msgs[0]
    assert run_diag(calm + [(1.04, 1.0)])[0] == []

def test_diagnostics_g_falling_while_d_confident():
    falling = [(0.1, 3.0 - 0.1 * i, {'d_real': 4.0, 'd_fake': -4.0}) for i in range(22)]
    msgs, _ = run_diag(falling)
    assert len(msgs) == 1 and "G's loss fell steadily" in msgs[0]
    unsure = [(1.3, 3.0 - 0.1 * i, {'d_real': 0.3, 'd_fake': -0.3}) for i in range(22)]
    assert run_diag(unsure)[0] == []

def test_diagnostics_flag_collapse_in_a_real_run(tmp_path):
    "A generator whose output layer is frozen at zero emits one point: the run reports mode collapse."
    import ganlab.train as T
    from ganlab.models import MLPGenerator, MLPDiscriminator
    from ganlab.data import ring
    from ganlab.core import seed_everything
    from ganlab import losses as L
    seed_everything(0)
    G, D = MLPGenerator(2, 2, (16,)), MLPDiscriminator(2, (16,))
    with torch.no_grad(): G.net[-1].weight.zero_()
    G.net[-1].weight.requires_grad_(False)
    msgs = []
    game = T.AdversarialGame(G, D, L.get('nsgan'), torch.optim.Adam([p for p in G.parameters() if p.requires_grad], 1e-3),
                             torch.optim.Adam(D.parameters(), 1e-3))
    tr = Trainer(game, ring(), batch_size=32, callbacks=[Diagnostics(every=10, warmup=40, report=msgs.append)]).fit(80)
    assert len(msgs) == 1 and 'mode collapse: generated samples are 0.00× as spread out' in msgs[0]

@pytest.mark.parametrize('opts', [['--precision', 'bf16'], ['--channels-last'], ['--no-diagnostics']])
def test_gpu_options_run_on_cpu(tmp_path, opts):
    assert main(['--out', str(tmp_path/'r'), '--steps', '20', *SMALL, *opts]) == 0
    cfg = json.loads((tmp_path/'r'/'config.json').read_text())
    assert cfg['precision'] == ('bf16' if '--precision' in opts else 'fp32') and cfg['diagnostics'] == ('--no-diagnostics' not in opts)

def test_dcgan_on_images_runs(tmp_path, monkeypatch):
    "The image path end to end on a tiny synthetic set (the real data sets are tested in test_data)."
    import ganlab.data as gdata
    imgs = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    monkeypatch.setitem(gdata.datasets._items, 'tiny', lambda split='train', **kw: gdata.ImageTensors(imgs, torch.zeros(64, dtype=torch.long)))
    assert main(['--out', str(tmp_path/'img'), '--data', 'tiny', '--arch', 'dcgan', '--width', '8', '--latent-dim', '16',
                 '--steps', '4', '--batch-size', '8', '--checkpoint-every', '2', '--channels-last', '--quiet']) == 0
    assert (tmp_path/'img'/'samples'/'step_000004.png').exists()
    m = json.loads((tmp_path/'img'/'metrics.json').read_text())
    assert m['step'] == 4 and 'modes' not in m

def test_train_size_is_one_fixed_subset_for_every_seed():
    "A limited-data run trains on `train_size` items of the split, the same ones whatever the run's seed."
    from ganlab.train import load_data
    from ganlab.data import load
    full = load('mnist', split='test')
    a, b = (load_data(TrainConfig(data='mnist', split='test', arch='dcgan', train_size=100, seed=s)) for s in (0, 1))
    assert len(a) == 100 and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    rows = {bytes(x.numpy()) for x in full.images}
    assert all(bytes(x.numpy()) in rows for x in a.images) and len({bytes(x.numpy()) for x in a.images}) == 100
    assert len(load_data(TrainConfig(data='mnist', split='test', arch='dcgan'))) == len(full) == 10000

from ganlab.losses import losses as LOSSES

@pytest.mark.parametrize('loss', LOSSES.names)
def test_every_loss_trains_on_points_and_images(tmp_path, monkeypatch, loss):
    "Algorithm 1 for every loss: the trainer builds the model each loss needs (heads, conditioning, autoencoder)."
    import ganlab.data as gdata
    imgs = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8)
    monkeypatch.setitem(gdata.datasets._items, 'tiny', lambda split='train', **kw: gdata.ImageTensors(imgs, torch.arange(40) % 10))
    for data, arch in (('ring8', 'mlp'), ('tiny', 'dcgan')):
        out = tmp_path/data
        assert main(['--out', str(out), '--data', data, '--arch', arch, '--loss', loss, '--steps', '3', '--batch-size', '8',
                     '--width', '8', '--checkpoint-every', '3', '--eval-samples', '50', '--quiet']) == 0, (loss, data)
        state = torch.load(out/'checkpoint.pt', weights_only=False)
        assert state['step'] == 3 and all(torch.isfinite(v).all() for v in state['generator'].values() if v.is_floating_point())

def test_cgan_generates_the_requested_mode(tmp_path):
    "Conditioned on the ring's component label, a trained CGAN puts samples for label k at centre k."
    from ganlab import models
    from ganlab.data import ring
    assert main(['--out', str(tmp_path/'c'), '--loss', 'cgan', '--steps', '1500', '--quiet', '--no-diagnostics']) == 0
    s = torch.load(tmp_path/'c'/'checkpoint.pt', weights_only=False); cfg = s['config']
    G, _ = models.build('mlp', (2,), cfg['latent_dim'], width=cfg['width'], conditioning='labels', n_classes=8)
    G.load_state_dict(s['generator']); G.eval()
    y = torch.arange(8).repeat_interleave(100)
    with torch.no_grad(): x = G(torch.randn(800, cfg['latent_dim'], generator=torch.Generator().manual_seed(0)), y)
    nearest = torch.cdist(x.double(), ring().centers).argmin(1)
    assert (nearest == y).double().mean() > 0.95                  # measured: 1.0

def test_two_processes_train_the_same_model_as_one(tmp_path):
    "torchrun with 2 CPU processes (gloo) and the same global batch ends with the single process's weights."
    common = ['--steps', '40', '--width', '32', '--batch-size', '64', '--checkpoint-every', '40', '--quiet']
    assert main(['--out', str(tmp_path/'one'), *common]) == 0
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', SCRIPT,
                        '--out', str(tmp_path/'two'), *common], capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count('ganlab-train: ring8') == 1                  # only rank 0 reports
    (s1, w1), (s2, w2) = weights(tmp_path/'one'), weights(tmp_path/'two')
    assert s1 == s2 == 40
    for k in w1: assert torch.allclose(w1[k], w2[k], atol=1e-5, rtol=0), k       # measured: ≤ 6e-8


# --- every bad input: one line, exit status 2, nothing changed (issue 13) --------------------------------
from test_core import refused, snapshot, flip_bit_in_tensor_data

TINY = ['--steps', '5', '--width', '16', '--batch-size', '32', '--log-every', '5', '--quiet']


@pytest.fixture
def done_run(tmp_path):
    "A finished 5-step ring run (about a second), and a snapshot of its files."
    run = tmp_path/'run'
    assert main(['--out', str(run), *TINY]) == 0
    return run, snapshot(run)


BAD_OPTIONS = [  # (options, the name the line must start with)
    (['--batch-size', '1e9'], '--batch-size: expected an integer'),
    (['--batch-size', '1000000000'], 'batch_size: expected a positive integer <= 65536'),
    (['--width', '1000000'], 'width: expected a positive integer <= 8192'),
    (['--eval-samples', '-1'], 'eval_samples: expected a positive integer'),
    (['--lr-g', 'inf'], "--lr-g: expected a finite number, got 'inf'"),
    (['--device', 'cpu:99'], "device: expected 'cpu' (one CPU device"),
    (['--steps', '3', '--bogus'], 'arguments: expected only the options of --help, got --bogus'),
    (['--train-size', '0'], 'train_size: expected a positive integer'),
    (['--train-size', '10'], 'train_size: expected no value for a synthetic mixture'),
    (['--data', 'mnist', '--split', 'test', '--arch', 'dcgan', '--train-size', '10001'], 'train_size: expected at most the 10000 items of mnist-test'),
]


@pytest.mark.parametrize('options,start', BAD_OPTIONS, ids=[o[0] + o[1] for o, _ in BAD_OPTIONS])
def test_a_bad_option_is_one_line_and_makes_no_folder(tmp_path, capsys, options, start):
    line = refused(main, ['--out', str(tmp_path/'run'), '--quiet', *options], capsys)
    assert line.startswith(f'ganlab-train: {start}'), line
    assert not (tmp_path/'run').exists() and not (tmp_path/'runs').exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason='a GPU is visible')
def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    line = refused(main, ['--out', str(tmp_path/'run'), '--device', 'cuda', '--quiet'], capsys)
    assert line == "ganlab-train: device: expected a visible CUDA GPU (none found; use --device cpu), got 'cuda'"
    assert not (tmp_path/'run').exists()


def test_out_a_file_or_under_a_file_is_refused_and_the_file_kept(tmp_path, capsys):
    notes = tmp_path/'notes.txt'
    notes.write_text('precious')
    for argv in (['--out', str(notes), '--overwrite'], ['--out', str(notes/'sub')]):
        line = refused(main, [*argv, *TINY], capsys)
        assert line.startswith('ganlab-train: out: expected a folder this user can create or write in'), line
        assert 'notes.txt is a file' in line
    assert notes.read_text() == 'precious' and sorted(p.name for p in tmp_path.iterdir()) == ['notes.txt']


def test_an_unwritable_out_is_refused(tmp_path, capsys, monkeypatch):
    "A folder without write permission (simulated: tests may run as root), and one the kernel refuses."
    line = refused(main, ['--out', '/proc/ganlab-no-such/run', *TINY], capsys)
    assert line.startswith('ganlab-train: out: expected a folder this user can create or write in'), line
    locked = tmp_path/'locked'
    locked.mkdir()
    monkeypatch.setattr(os, 'access', lambda *a, **k: False)
    line = refused(main, ['--out', str(locked/'run'), *TINY], capsys)
    assert line.endswith("is not writable by this user)'") and list(locked.iterdir()) == []


def test_overwrite_refused_later_keeps_the_old_run(done_run, capsys):
    "--overwrite with a configuration refused after the folder check (an unknown data set) deletes nothing."
    run, before = done_run
    line = refused(main, ['--out', str(run), '--overwrite', '--data', 'no-such-set', *TINY], capsys)
    assert "unknown dataset 'no-such-set'" in line or 'no-such-set' in line
    assert snapshot(run) == before


def test_refused_resumes_change_nothing(done_run, capsys):
    run, before = done_run
    cases = {('--steps', '3'): "steps: expected at least the checkpoint's step 5",
             ('--steps', '6', '--device', 'cpu:99'): 'device: expected',
             ('--steps', '6', '--overwrite'): 'resume/overwrite: expected at most one of them'}
    for options, start in cases.items():
        line = refused(main, ['--out', str(run), '--resume', *options], capsys)
        assert line.startswith(f'ganlab-train: {start}'), line
        assert snapshot(run) == before, options


def test_resume_refuses_a_flipped_bit_in_a_weight_tensor(done_run, capsys):
    run, _ = done_run
    stored = torch.load(run/'checkpoint.pt', weights_only=False)
    flip_bit_in_tensor_data(run/'checkpoint.pt', stored['generator']['net.0.0.weight'], bit=3)
    before = snapshot(run)
    line = refused(main, ['--out', str(run), '--resume', '--steps', '10', '--quiet'], capsys)
    assert line == (f"ganlab-train: checkpoint: expected the content whose sha256 is stored in {run/'checkpoint.pt'}, "
                    "got 'different content: the file changed after it was written'")
    assert snapshot(run) == before


def test_resume_from_a_checkpoint_without_a_digest_warns_in_one_line_and_rewrites_it_with_one(done_run, capsys):
    run, _ = done_run
    state = torch.load(run/'checkpoint.pt', weights_only=False)
    del state['sha256']
    torch.save(state, run/'checkpoint.pt')                                # as written before digests
    assert main(['--out', str(run), '--resume', '--steps', '6', '--quiet']) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('ganlab-train: warning: checkpoint ') and 'no sha256 digest' in err[0]
    assert 'sha256' in torch.load(run/'checkpoint.pt', weights_only=False)


def test_bf16_on_a_cpu_is_cpu_autocast_and_says_so(tmp_path, capsys):
    "PyTorch autocasts matrix products to bfloat16 on CPUs: accepted, with a one-line note."
    from ganlab.train import BF16Autocast
    assert main(['--out', str(tmp_path/'run'), '--precision', 'bf16', '--device', 'cpu', *TINY]) == 0
    assert "note: --precision bf16 on a CPU runs PyTorch's CPU autocast" in capsys.readouterr().err
    trainer = SimpleNamespace(device=torch.device('cpu'))
    BF16Autocast().before_fit(trainer)
    with trainer.autocast():
        assert torch.nn.Linear(4, 2)(torch.ones(3, 4)).dtype == torch.bfloat16

def test_every_documented_command_names_registered_pieces():
    """Every `--arch`, `--game` and `--data` of a `ganlab-train` command in the README or a chapter resolves in a
    fresh process that imports only the trainer (architectures and games registered by other chapters' modules
    included: `--arch stylegan` once failed from the command line)."""
    root = Path(__file__).parents[1]
    texts = [(root/'README.md').read_text()] + [p.read_text() for p in sorted((root/'nbs').glob('*.ipynb'))]
    wanted = {'arch': set(), 'game': set(), 'data': set()}
    for text in texts:
        for command in re.findall(r'ganlab-train((?:[^\n"`|]|\\\\n)*)', text):
            for option, name in re.findall(r'--(arch|game|data) ([\w-]+)', command):
                if not name.isupper():                      # NAME, DATA: placeholders
                    wanted[option].add(name)
    assert {'stylegan', 'progressive', 'unet', 'dcgan'} <= wanted['arch'] and {'pix2pix', 'progressive'} <= wanted['game'], wanted
    code = ('import json, sys\nfrom ganlab.train import TrainConfig\nfrom ganlab import models, recipes, data\n'
            'w = json.loads(sys.argv[1])\n'
            'missing = [n for n in w["arch"] if n not in models.architectures] + [n for n in w["game"] if n not in recipes.game_recipes]'
            ' + [n for n in w["data"] if n not in data.datasets]\nprint(json.dumps(missing))')
    r = subprocess.run([sys.executable, '-c', code, json.dumps({k: sorted(v) for k, v in wanted.items()})],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
