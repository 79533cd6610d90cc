"The evaluator networks, streamed feature extraction, the Inception-v3 path and `ganlab-eval`."
import json, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn
from conftest import load_or_skip
from ganlab import data as gdata, models
from ganlab.evaluation import (EVALUATORS, EvaluatorCNN, InceptionEvaluator, accuracy, augment, evaluator_data,
                               evaluator_dir, evaluator_record, evaluate_run, extract_features, fid, image_metrics,
                               load_evaluator, main, reference_statistics, stacked_mnist_digits)
from ganlab.evaluators import _sha256
from ganlab.metrics import FeatureStats, frechet_distance
from ganlab.train import main as train_main

SCRIPT = str(Path(sys.executable).parent/'ganlab-eval')

def first(ds, n=2000): return gdata.ImageTensors(ds.images[:n], ds.labels[:n], ds.classes, ds.name)

# --- the shipped evaluators -------------------------------------------------------------------------

@pytest.mark.parametrize('name', list(EVALUATORS))
def test_shipped_files_are_small_and_match_their_record(name):
    record = evaluator_record(name)
    weights = evaluator_dir()/f'{name}.pt'
    assert weights.stat().st_size < 2_000_000 and record['weights_bytes'] == weights.stat().st_size
    assert _sha256(weights) == record['weights_sha256'] and _sha256(evaluator_dir()/f'{name}-reference.pt') == record['reference_sha256']
    assert record['accuracy'] >= record['target'] == EVALUATORS[name]['target']
    assert record['command'].startswith(f'ganlab-eval --train-evaluator {name} --seed 0')
    model = load_evaluator(name)
    assert not model.training and not any(p.requires_grad for p in model.parameters()) and model.name == name
    for split, info in record['reference'].items():
        ref = reference_statistics(name, split)
        assert ref['n'] == info['n'] and ref['mu'].shape == (128,) and ref['sigma'].shape == (128, 128)
        assert torch.equal(ref['sigma'], ref['sigma'].T) and float(torch.linalg.eigvalsh(ref['sigma'])[0]) > 0   # full rank

def test_mnist_evaluator_reaches_its_recorded_held_out_accuracy():
    load_or_skip('mnist', split='test')
    train_set, held_out = evaluator_data('mnist')
    assert (len(train_set), len(held_out)) == (8000, 2000)
    assert not set(map(tuple, train_set.images.flatten(1)[:200].tolist())) & set(map(tuple, held_out.images.flatten(1).tolist()))
    acc = accuracy(load_evaluator('mnist'), held_out)
    assert abs(acc - evaluator_record('mnist')['accuracy']) <= 1 / 2000 and acc >= 0.99

def test_fashion_evaluator_reaches_its_recorded_accuracy_on_2000_test_images():
    test = load_or_skip('fashion-mnist', split='test')
    acc = accuracy(load_evaluator('fashion-mnist'), first(test))
    assert abs(acc - evaluator_record('fashion-mnist')['accuracy_first_2000']) <= 1 / 2000
    assert evaluator_record('fashion-mnist')['accuracy'] >= 0.91

def test_fid_of_the_reference_set_against_its_own_statistics_is_zero():
    test = load_or_skip('fashion-mnist', split='test')
    assert fid(test, 'fashion-mnist', 'test', n=None, batch_size=1000) < 1e-6

def test_reference_statistics_errors(tmp_path):
    with pytest.raises(ValueError, match="^split: expected a split with stored statistics for mnist"): reference_statistics('mnist', 'train')
    with pytest.raises(ValueError, match="^name: expected an evaluator name, one of 'mnist', 'fashion-mnist', got 'cifar10'"): load_evaluator('cifar10')
    with pytest.raises(FileNotFoundError, match='ganlab-eval --train-evaluator mnist'): load_evaluator('mnist', folder=tmp_path)
    assert load_evaluator('Fashion_MNIST').name == 'fashion-mnist'

# --- the network, augmentation and streamed extraction ----------------------------------------------

def test_evaluator_shapes_and_bad_input():
    model = EvaluatorCNN().eval()
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert model.features(x).shape == (4, 128) and torch.equal(model(x), model.head(model.features(x)))
    with pytest.raises(ValueError, match=r'^x: expected images of shape \(N, 1, 28, 28\)'): model(torch.zeros(2, 1, 32, 32))

def test_augment_is_seeded_and_keeps_the_background_black():
    x = torch.full((6, 1, 28, 28), -1.); x[:, :, 10:18, 10:18] = 1.
    a = augment(x, torch.Generator().manual_seed(0), degrees=10, scale=.1, shift=2, flip=True)
    b = augment(x, torch.Generator().manual_seed(0), degrees=10, scale=.1, shift=2, flip=True)
    assert torch.equal(a, b) and a[:, :, 0, :].max() == -1 and a.min() >= -1 and a.max() <= 1
    assert torch.allclose(augment(x, torch.Generator()), x, atol=1e-6)          # no jitter: the identity

def test_streamed_extraction_equals_one_batch():
    model = EvaluatorCNN().eval()
    images = torch.randint(0, 256, (57, 1, 28, 28), dtype=torch.uint8)
    ds = gdata.ImageTensors(images, torch.zeros(57, dtype=torch.long))
    whole = extract_features(model, gdata.to_unit_range(images), batch_size=57)
    for source, batch in ((ds, 10), (images, 8), (gdata.to_unit_range(images), 1)):
        part = extract_features(model, source, batch_size=batch)
        assert torch.allclose(part.features, whole.features, atol=1e-5) and torch.allclose(part.logits, whole.logits, atol=1e-5)
    assert extract_features(model, ds, n=20, batch_size=7).features.shape == (20, 128)

def test_generator_and_sampler_sources():
    model = EvaluatorCNN().eval()
    G, _ = models.build('dcgan', (1, 28, 28), latent_dim=8, width=8)
    out = extract_features(model, G, n=25, batch_size=10, seed=5)
    gen, expected = torch.Generator().manual_seed(5), []
    G.eval()
    with torch.no_grad():
        for b in (10, 10, 5): expected.append(model.features(G(torch.randn(b, 8, generator=gen))))
    G.train()
    assert torch.allclose(out.features, torch.cat(expected), atol=1e-5) and G.training and not model.training
    calls = []
    sampler = lambda b: (calls.append(b), torch.zeros(b, 1, 28, 28))[1]
    assert extract_features(model, sampler, n=23, batch_size=10).features.shape == (23, 128) and calls == [10, 10, 3]
    with pytest.raises(ValueError, match='^n: expected the number of samples to draw'): extract_features(model, G)
    with pytest.raises(ValueError, match='^n: expected a number of images from 1 to 3'): extract_features(model, torch.zeros(3, 1, 28, 28), n=4)
    with pytest.raises(ValueError, match='^source: expected a sampler returning 4 images'): extract_features(model, lambda b: torch.zeros(2, 1, 28, 28), n=4)

def test_stacked_mnist_digits_read_real_triples():
    load_or_skip('mnist', split='test')
    stacked = gdata.stacked_mnist(1000, split='test', download=False)
    digits = stacked_mnist_digits(load_evaluator('mnist'), stacked)
    assert digits.shape == (1000, 3) and (100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2] == stacked.labels).double().mean() > 0.97

# --- Inception-v3, with random weights ---------------------------------------------------------------

def test_inception_path_with_random_weights(tmp_path):
    torch.manual_seed(0)
    inception = InceptionEvaluator().eval()
    state = {**inception.net.state_dict(), **{f'fc.{k}': v for k, v in inception.fc.state_dict().items()},
             'AuxLogits.fc.weight': torch.zeros(1000, 768)}          # shaped like torchvision's file: aux weights are dropped
    torch.save(state, tmp_path/'inception.pth')
    reloaded = InceptionEvaluator(tmp_path/'inception.pth').eval()
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    one, two = extract_features(inception, images, batch_size=1), extract_features(reloaded, images, batch_size=2)
    assert one.features.shape == (2, 2048) and one.logits.shape == (2, 1000)
    assert torch.allclose(one.features, two.features, atol=1e-4) and torch.allclose(one.logits, two.logits, atol=1e-4)
    with pytest.raises(ValueError, match='^weights: expected an Inception-v3 state dict file'): InceptionEvaluator(tmp_path/'missing.pth')
    with pytest.raises(ValueError, match='^size: expected an input size of at least 75'): InceptionEvaluator(size=32)

# --- ganlab-eval ---------------------------------------------------------------------------------------

def test_eval_of_a_ring_run_reproduces_the_trainers_numbers_and_keeps_keys(tmp_path):
    run = tmp_path/'ring'
    assert train_main(['--out', str(run), '--steps', '60', '--width', '32', '--quiet']) == 0
    before = json.loads((run/'metrics.json').read_text())
    before['note'] = 'kept'; (run/'metrics.json').write_text(json.dumps(before))
    assert main([str(run), '--quiet']) == 0
    after = json.loads((run/'metrics.json').read_text())
    assert after['note'] == 'kept' and after['diagnostics'] == before['diagnostics']
    assert all(after[k] == before[k] for k in ('modes', 'n_modes', 'high_quality', 'reverse_kl', 'counts', 'samples'))
    assert (after['evaluator'], after['eval_step'], after['eval_generator']) == ('pacgan-modes', 60, 'generator')

def test_eval_of_a_conditional_run_samples_labels_as_the_trainer_does(tmp_path):
    run = tmp_path/'cgan'
    assert train_main(['--out', str(run), '--loss', 'cgan', '--steps', '40', '--width', '32', '--quiet']) == 0
    before = json.loads((run/'metrics.json').read_text())
    assert main([str(run), '--quiet']) == 0
    after = json.loads((run/'metrics.json').read_text())
    assert all(after[k] == before[k] for k in ('modes', 'high_quality', 'reverse_kl', 'counts'))

def test_eval_uses_ema_weights_unless_told_not_to(tmp_path):
    run = tmp_path/'ema'
    assert train_main(['--out', str(run), '--steps', '30', '--width', '16', '--ema', '0.9', '--quiet']) == 0
    assert evaluate_run(run, samples=500)['eval_generator'] == 'ema'
    assert evaluate_run(run, samples=500, ema=False)['eval_generator'] == 'generator'

@pytest.fixture(scope='module')
def fashion_run(tmp_path_factory):
    load_or_skip('fashion-mnist', split='train')
    run = tmp_path_factory.mktemp('runs')/'fashion'
    assert train_main(['--out', str(run), '--data', 'fashion-mnist', '--arch', 'dcgan', '--width', '8', '--latent-dim', '16',
                       '--steps', '10', '--batch-size', '16', '--checkpoint-every', '10', '--eval-samples', '50',
                       '--trick', 'virtual_batch_norm', '--quiet']) == 0           # a trick that changes G: rebuilt as in training
    return run

SMALL_EVAL = ['--samples', '400', '--pr-samples', '200', '--kid-subsets', '5', '--kid-subset-size', '200']

def test_eval_of_an_image_run(fashion_run, capsys):
    assert main([str(fashion_run), *SMALL_EVAL]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith('ganlab-eval: FID ') and '(400 samples, fashion-mnist, step 10' in line and 'metrics.json' in line
    m = json.loads((fashion_run/'metrics.json').read_text())
    assert m['step'] == 10 and 'diagnostics' in m                               # the trainer's keys stay
    assert (m['evaluator'], m['samples'], m['real_samples'], m['pr_samples'], m['reference_samples']) == ('fashion-mnist', 400, 400, 200, 60000)
    assert m['fid'] > 0 and 1 <= m['inception_score'] <= 10 and all(0 <= m[k] <= 1 for k in ('precision', 'recall', 'coverage'))
    first = {k: m[k] for k in ('fid', 'kid', 'inception_score', 'precision', 'recall', 'density', 'coverage')}
    assert main([str(fashion_run), *SMALL_EVAL, '--quiet']) == 0                 # seeded: the same numbers again
    again = json.loads((fashion_run/'metrics.json').read_text())
    assert {k: again[k] for k in first} == first

def test_image_metrics_of_real_images_are_near_perfect():
    test = load_or_skip('fashion-mnist', split='test')
    model = load_evaluator('fashion-mnist')
    rest = gdata.ImageTensors(test.images[1000:], test.labels[1000:])
    m = image_metrics(model, test.images[:1000], rest, n=1000, n_pr=500, kid_subsets=5, kid_subset_size=500)
    assert abs(m['kid']) < 3 * m['kid_std'] and abs(m['density'] - 1) < .1 and m['coverage'] > .9 and min(m['precision'], m['recall']) > .8
    ref, fake = FeatureStats().update(extract_features(model, rest).features), extract_features(model, test.images[:1000]).features.double()
    assert abs(m['fid'] - frechet_distance(fake.mean(0), fake.T.cov(), ref.mu, ref.sigma)) < 1e-6

def test_eval_errors(tmp_path, capsys, monkeypatch):
    assert main([str(tmp_path/'nowhere')]) == 2
    assert 'run_dir: expected a run folder written by ganlab-train' in capsys.readouterr().err
    assert main([]) == 2 and 'RUN_DIR: expected a run folder' in capsys.readouterr().err
    imgs = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    monkeypatch.setitem(gdata.datasets._items, 'tiny', lambda split='train', **kw: gdata.ImageTensors(imgs, torch.zeros(64, dtype=torch.long)))
    run = tmp_path/'tiny'
    assert train_main(['--out', str(run), '--data', 'tiny', '--arch', 'dcgan', '--width', '8', '--latent-dim', '8',
                       '--steps', '2', '--batch-size', '8', '--quiet']) == 0
    assert main([str(run), '--samples', '50']) == 2
    assert '--inception-weights FILE' in capsys.readouterr().err

def test_help_is_the_manual():
    r = subprocess.run([SCRIPT, '--help'], capture_output=True, text=True)
    assert r.returncode == 0
    for words in ('RUN_DIR', 'metrics.json', 'FID, KID, Inception Score', '--train-evaluator', '--inception-weights', '--no-ema'):
        assert words in r.stdout, words


# --- ganlab-eval: every bad input is one line, exit status 2, nothing written (issue 13) ------------------
from test_core import refused, snapshot, flip_bit_in_tensor_data


@pytest.fixture(scope='module')
def ring_run(tmp_path_factory):
    run = tmp_path_factory.mktemp('eval')/'ring'
    assert train_main(['--out', str(run), '--steps', '5', '--width', '16', '--batch-size', '32', '--quiet']) == 0
    return run


BAD_EVAL = [(['--samples', '-5'], '--samples'), (['--samples', '0'], '--samples'), (['--samples', '1e10'], '--samples'),
            (['--threads', '-1'], '--threads'), (['--threads', '0'], '--threads'), (['--batch-size', '0'], '--batch-size'),
            (['--kid-subsets', '0'], '--kid-subsets'), (['--device', 'cpu:99'], 'device'),
            (['--train-evaluator', 'mnist'], 'RUN_DIR')]


@pytest.mark.parametrize('options,name', BAD_EVAL, ids=[' '.join(o) for o, _ in BAD_EVAL])
def test_eval_bad_arguments_are_one_line_and_write_nothing(ring_run, capsys, options, name):
    before = snapshot(ring_run)
    line = refused(main, [str(ring_run), *options], capsys)
    assert line.startswith(f'ganlab-eval: {name}: expected '), line
    assert snapshot(ring_run) == before


def damage(run, what):
    "Damage one file of a copy of a run folder as `what` says."
    ckpt = run/'checkpoint.pt'
    if what in ('random', 'truncated', 'empty'):
        blob = ckpt.read_bytes()
        ckpt.write_bytes({'random': bytes(range(256)) * 8, 'truncated': blob[:len(blob) // 2], 'empty': b''}[what])
    elif what == 'flipped bit':
        flip_bit_in_tensor_data(ckpt, torch.load(ckpt, weights_only=False)['generator']['net.0.0.weight'])
    elif what == 'config not JSON':
        (run/'config.json').write_text('{"data": "ring8", ')
    elif what == 'config a list':
        (run/'config.json').write_text('[1, 2]')
    elif what == 'config without arch':
        cfg = json.loads((run/'config.json').read_text())
        del cfg['arch']
        (run/'config.json').write_text(json.dumps(cfg))
    elif what == 'config width -1':
        cfg = json.loads((run/'config.json').read_text())
        (run/'config.json').write_text(json.dumps({**cfg, 'width': -1}))
    elif what == 'metrics not JSON':
        (run/'metrics.json').write_text('{"modes": ')


DAMAGE = {'random': 'checkpoint: expected a ganlab checkpoint', 'truncated': 'checkpoint: expected a ganlab checkpoint',
          'empty': 'checkpoint: expected a ganlab checkpoint', 'flipped bit': 'checkpoint: expected the content whose sha256',
          'config not JSON': 'config: expected a JSON object', 'config a list': 'config: expected a JSON object',
          'config without arch': 'config: expected a ganlab-train configuration',
          'config width -1': 'config: expected the configuration ganlab-train wrote',
          'metrics not JSON': 'metrics: expected a JSON object'}


@pytest.mark.parametrize('what', list(DAMAGE))
def test_eval_of_a_damaged_run_is_one_line_and_writes_nothing(ring_run, tmp_path, capsys, what):
    import shutil
    run = tmp_path/'copy'
    shutil.copytree(ring_run, run)
    damage(run, what)
    before = snapshot(run)
    line = refused(main, [str(run)], capsys)
    assert line.startswith(f'ganlab-eval: {DAMAGE[what]}'), line
    assert snapshot(run) == before


@pytest.mark.parametrize('content', ['empty', 'random', 'another network'])
def test_unreadable_inception_weights_are_a_value_error_naming_the_file(tmp_path, content):
    path = tmp_path/'inception.pth'
    if content == 'another network':
        torch.save({'weight': torch.zeros(2)}, path)
    else:
        path.write_bytes({'empty': b'', 'random': bytes(range(256)) * 4}[content])
    with pytest.raises(ValueError, match=rf'^weights: expected an Inception-v3 state dict file .*, got .*inception\.pth'):
        InceptionEvaluator(path)


def test_fid_metric_along_a_run_equals_ganlab_eval_at_its_end(tmp_path):
    "`fid_metric` (a `Scores` metric): the curve's last FID is the FID `evaluate_run` computes from the checkpoint."
    load_or_skip('fashion-mnist')
    from ganlab.callbacks import Scores
    from ganlab.evaluation import fid_metric
    from ganlab.train import TrainConfig, train
    scores = Scores(every=2, metric=fid_metric('fashion-mnist', n=500))
    cfg = TrainConfig(data='fashion-mnist', arch='dcgan', width=8, batch_size=16, steps=4, log_every=2,
                      checkpoint_every=4, eval_samples=500)
    train(cfg, out=tmp_path/'run', progress=False, callbacks=[scores])
    assert [r['step'] for r in scores.rows] == [2, 4] and scores.rows[0]['fid'] != scores.rows[1]['fid']
    m = evaluate_run(tmp_path/'run', samples=500, pr_samples=100, kid_subsets=2, kid_subset_size=100, device='cpu')
    assert abs(scores.rows[-1]['fid'] - m['fid']) <= 1e-6 * m['fid'], (scores.rows, m['fid'])
    with pytest.raises(ValueError, match="^data: expected a data set with a ganlab evaluator"):
        fid_metric('ring8')


# --- label accuracy of a conditional generator (issue 16) -----------------------------------------------

def test_label_accuracy_counts_samples_read_as_their_label():
    from torch import nn
    from ganlab.evaluation import label_accuracy
    from ganlab.games import Conditioning

    class ByLabel(nn.Module):                              # the 'image' is the label itself
        latent_dim = 2
        def forward(self, z, y): return y.float()[:, None]

    class Reader(nn.Module):                               # reads the label back, shifted by `shift` classes
        def __init__(self, shift, k=5):
            super().__init__(); self.shift, self.k, self.w = shift, k, nn.Parameter(torch.zeros(()))
        def forward(self, x): return nn.functional.one_hot((x[:, 0].long() + self.shift) % self.k, self.k).float()

    five = Conditioning('labels', 5)
    assert label_accuracy(Reader(0), ByLabel(), five, n=700, batch_size=128) == dict(label_accuracy=1.0, chance=0.2, label_samples=700)
    assert label_accuracy(Reader(2), ByLabel(), five, n=300)['label_accuracy'] == 0.0
    with pytest.raises(ValueError, match='^conditioning: expected class-label conditioning'):
        label_accuracy(Reader(0), ByLabel(), Conditioning(), n=10)
    with pytest.raises(ValueError, match='^classifier: expected logits for the 5 classes'):
        label_accuracy(Reader(0, k=7), ByLabel(), five, n=10)
