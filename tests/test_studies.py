"The benchmark studies (ganlab.studies, `ganlab-bench study`): resumable results, summaries, the command line."
import json, math
import pytest
from ganlab.studies import Study, run_study, summarize_seeds, studies, main
from ganlab import bench
from ganlab.callbacks import Scores

TINY = Study('tiny', 'a test study', datasets=('ring8',), base=dict(arch='mlp', width=8, batch_size=16),
             methods={'GAN': {}, 'packed': dict(tricks=['pack:m=2'])}, seeds=(0, 1), steps=3)


def test_run_study_resumes_and_keeps_samples(tmp_path):
    logged = []
    res = run_study(TINY, tmp_path, log=logged.append)
    assert len(res['runs']) == 4 and len(logged) == 4
    assert json.loads((tmp_path/'results.json').read_text())['runs'] == res['runs']
    assert sorted(p.name for p in (tmp_path/'samples').iterdir()) == ['ring8-gan-seed0.png', 'ring8-packed-seed0.png']
    again = run_study(TINY, tmp_path, log=logged.append)
    assert len(logged) == 4 and again['runs'] == res['runs']             # finished runs are skipped
    with pytest.raises(ValueError, match='^out: expected a results file written with these settings'):
        run_study(TINY, tmp_path, steps=4)                                 # never mixes runs of different settings


def test_same_seed_same_result_and_summary_statistics(tmp_path):
    a = run_study(TINY, tmp_path/'a', seeds=(0, 1), methods=['GAN'], log=lambda s: None)
    b = run_study(TINY, tmp_path/'b', seeds=(0, 1), methods=['GAN'], log=lambda s: None)
    strip = lambda runs: [{k: v for k, v in r.items() if k not in ('seconds', 'cpu_seconds')} for r in runs]
    assert strip(a['runs']) == strip(b['runs'])                           # seeded: reproducible
    assert all(r['cpu_seconds'] > 0 for r in a['runs'])                   # the training's CPU time, recorded
    row, = summarize_seeds(a, keys=['high_quality', 'modes'])
    hq = [r['high_quality'] for r in a['runs']]
    assert row['n'] == 2 and row['failed'] == 0
    assert math.isclose(row['high_quality'], sum(hq) / 2) and math.isclose(row['high_quality_se'], abs(hq[0] - hq[1]) / 2)


def test_bad_method_and_unknown_study(capsys):
    with pytest.raises(ValueError, match="^methods: expected names from \\['GAN', 'packed'\\]"):
        run_study(TINY, None, methods=['nope'])
    with pytest.raises(SystemExit):
        main(['no-such-study'])
    err = capsys.readouterr().err
    assert f"unknown study 'no-such-study'; valid names: {', '.join(studies.names)}" in err and 'pacgan_paper' in err


def test_cli_records_its_command_and_bench_delegates(tmp_path):
    out = tmp_path/'p'
    assert bench.main(['study', 'pacgan', '--out', str(out), '--seeds', '0', '--steps', '2', '--methods', 'GAN']) == 0
    stored = json.loads((out/'results.json').read_text())
    assert stored['command'] == f'ganlab-bench study pacgan --out {out} --seeds 0 --steps 2 --methods GAN'
    assert [(r['method'], r['data']) for r in stored['runs']] == [('GAN', 'ring8'), ('GAN', 'grid25')]
    assert stored['published']['PacGAN4']['grid25'] == [24.8, 0.936]


def test_registered_studies_are_well_formed():
    assert studies.names == ['balance', 'conditional', 'diffaug_limited', 'diffaug_long', 'generator_norm', 'losses', 'losses_curve', 'pacgan', 'pacgan_beat', 'pacgan_beat_mlp', 'pacgan_beat_ring', 'pacgan_long', 'pacgan_paper', 'pacgan_paper_curve', 'stacked_mnist']
    for name in studies.names:
        s = studies[name]
        for m in s.methods: s.config(m, s.datasets[0], 0)                 # every method makes a valid TrainConfig
    from ganlab.losses import losses, get
    assert set(studies['losses'].methods) == {n for n in losses.names if get(n).conditioning is None}


def test_a_study_with_diagnostics_records_what_they_reported():
    "A saturating-loss D ten times faster than its default on the ring: the diagnostics report vanishing gradients, and the run says so."
    from ganlab.studies import run_one
    make = lambda diagnostics: Study('d', 'diagnosed', datasets=('ring8',), methods={'strong D': {}}, steps=300, diagnostics=diagnostics,
                                     base=dict(arch='mlp', width=16, batch_size=32, loss='gan', lr_d=1e-2))
    watched, unwatched = run_one(make(True), 'strong D', 'ring8', 0), run_one(make(False), 'strong D', 'ring8', 0)
    assert [d['kind'] for d in watched['diagnostics']] == ['vanishing gradients'] and 0 < watched['diagnostics'][0]['step'] < 300
    assert 'diagnostics' not in unwatched


def test_a_scored_study_keeps_its_curve_and_trains_as_an_unscored_one(tmp_path):
    "`score_every`: the game's metrics along the run, recorded; the run itself (its final metrics) unchanged."
    scored = Study('scored', 'a test study', datasets=('ring8',), base=dict(arch='mlp', width=8, batch_size=16),
                   methods={'GAN': {}}, seeds=(0,), steps=6, score_every=2, eval_samples=500)
    plain = Study('plain', 'a test study', datasets=('ring8',), base=dict(arch='mlp', width=8, batch_size=16),
                  methods={'GAN': {}}, seeds=(0,), steps=6, eval_samples=500)
    a = run_study(scored, tmp_path/'a', log=lambda s: None)
    b = run_study(plain, tmp_path/'b', log=lambda s: None)
    assert a['settings']['score_every'] == 2 and 'score_every' not in b['settings']
    run, = a['runs']
    assert [r['step'] for r in run['curve']] == [2, 4, 6]
    assert 0 < run['cpu_seconds'] and 0 < run['seconds']                     # CPU time recorded beside wall time
    final = {k: run[k] for k in ('modes', 'n_modes', 'high_quality', 'reverse_kl')}
    assert {k: run['curve'][-1][k] for k in final} == final                 # the last point is the final score
    assert final == {k: b['runs'][0][k] for k in final}                      # scoring did not change the run
    with pytest.raises(ValueError, match='^every: expected a positive integer, got 0'):
        Scores(0)


def test_conditional_study_compares_at_equal_budget():
    "CGAN against the SAGAN-lite (chapter 44): the same steps, batch and seeds; each with its own loss and optimiser."
    s = studies['conditional']
    configs = {m: s.config(m, 'fashion-mnist', 0).resolved() for m in s.methods}
    assert len({(c.steps, c.batch_size, c.data) for c in configs.values()}) == 1 and len(s.seeds) >= 3
    assert sorted({(c.arch, c.loss) for c in configs.values()}) == [('dcgan', 'cgan'), ('sagan', 'cgan_hinge')]
    orthogonal = [m for m, c in configs.items() if c.tricks]
    assert len(orthogonal) == 1 and configs[orthogonal[0]].tricks == ('orthogonal:beta=1e-4',)
    cgan = next(c for c in configs.values() if c.arch == 'dcgan')
    assert cgan.width == 32 and (cgan.lr_g, cgan.lr_d) == (2e-4, 2e-4)
    assert all((c.lr_g, c.lr_d, c.betas) == (1e-4, 4e-4, (0.0, 0.9)) for c in configs.values() if c.arch == 'sagan')
