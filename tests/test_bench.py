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
    assert 'valid names' in capsys.readouterr().err
