"""ganlab-bench runs and reports a ratio; its value is never tested (timings do not belong in tests)."""
import re
import pytest
import torch
from ganlab.bench import Row, benchmarks, time_interleaved, format_table, main, minimal_wgan_gp_d_loss, run_benchmarks, _dcgan_critic
from ganlab.losses import wgan_gp


def test_compare_interleaves_after_warmup():
    calls = []
    ours, ref = time_interleaved(lambda: calls.append('A'), lambda: calls.append('B'), repeats=3, warmup=1)
    assert ''.join(calls) == 'AB' + 'AB' + 'BA' + 'AB'
    assert ours >= 0 and ref >= 0
    with pytest.raises(ValueError, match='^repeats:'):
        time_interleaved(lambda: None, lambda: None, repeats=0)


def test_reference_computes_the_same_loss():
    critic = _dcgan_critic(4)
    real, fake = torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28)
    torch.manual_seed(0); ours = wgan_gp.d_loss(critic, real, fake)
    torch.manual_seed(0); ref = minimal_wgan_gp_d_loss(critic, real, fake)
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_registry_and_rows():
    assert 'wgan-gp' in benchmarks
    rows = run_benchmarks(['wgan-gp'], repeats=1, warmup=0, device='cpu')
    assert len(rows) == 1 and isinstance(rows[0], Row) and rows[0].ratio > 0 and rows[0].target == 1.05
    table = format_table([Row('x', 1.2, 1.05, 'd'), Row('y', 0.9, 1.05)])
    assert 'SLOW' in table.splitlines()[1] and ' ok ' in table.splitlines()[2]


def test_command_reports_a_ratio(capsys):
    assert main(['wgan-gp', '--repeats', '2', '--warmup', '1', '--device', 'cpu']) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ['benchmark', 'ratio', 'target']
    assert re.match(r'^wgan_gp\.d_loss vs minimal GP\s+\d+\.\d{3}\s+1\.05\s+(ok|SLOW)\s', out[1]), out[1]


def test_command_line_help_and_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(['--help'])
    assert e.value.code == 0 and 'ratio' in capsys.readouterr().out
    assert main(['--list']) == 0 and capsys.readouterr().out.split() == benchmarks.names
    for argv in (['no-such-bench'], ['--repeats', '0'], ['--device', 'tpu'], ['--threads', '0']):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert 'NAME: expected one of' in capsys.readouterr().err


# --- every bad input: one line, exit status 2, nothing written (issue 13) --------------------------------
from test_core import refused

BAD_BENCH = [(['--repeats', '0'], '--repeats'), (['--repeats', '1e3'], '--repeats'), (['--warmup', '-1'], '--warmup'),
             (['--threads', '0'], '--threads'), (['--device', 'cpu:99'], 'device'), (['nope'], 'NAME'),
             (['study', 'nope'], "unknown study 'nope'; valid names"), (['study', 'pacgan', '--seeds', '-1'], '--seeds'),
             (['study', 'pacgan', '--steps', '0'], '--steps'), (['study', 'pacgan', '--threads', '0'], '--threads'),
             (['study', 'pacgan', '--methods', 'nope'], 'methods')]


@pytest.mark.parametrize('argv,name', BAD_BENCH, ids=[' '.join(a) for a, _ in BAD_BENCH])
def test_bad_arguments_are_one_line(tmp_path, capsys, argv, name):
    argv = [*argv, '--out', str(tmp_path/'out')] if argv[0] == 'study' else argv
    prog = 'ganlab-bench study' if argv[0] == 'study' else 'ganlab-bench'
    line = refused(main, argv, capsys)
    assert line.startswith(f'{prog}: {name}' + ('' if name.startswith('unknown') else ': expected ')), line
    assert not (tmp_path/'out').exists()


@pytest.mark.parametrize('out', ['a file', 'under a file', 'a damaged results.json'])
def test_a_study_out_that_cannot_hold_results_is_one_line_and_kept(tmp_path, capsys, out):
    notes = tmp_path/'notes.txt'
    notes.write_text('precious')
    (tmp_path/'old').mkdir()
    (tmp_path/'old'/'results.json').write_text('{"settings": ')
    folder = {'a file': notes, 'under a file': notes/'sub', 'a damaged results.json': tmp_path/'old'}[out]
    line = refused(main, ['study', 'pacgan', '--steps', '1', '--out', str(folder)], capsys)
    assert line.startswith('ganlab-bench study: out: expected '), line
    assert notes.read_text() == 'precious' and (tmp_path/'old'/'results.json').read_text() == '{"settings": '
