"""The autograder: student versions (`assign`), the sandbox, grading, and the two commands.

Fixture labs are built here with `new_notebook`, so the tests do not depend on the real labs. Every grade
starts a sandboxed child (importing torch in it costs 1-3 s), so submissions are grouped: one `Grader`
(one reference child) per module, one child per submission, restarted only after a crash."""
import json, os, re, shutil, subprocess, sys, textwrap, time
from pathlib import Path
import pytest, torch
from ganlab.grading import (Item, Grader, LabFormatError, assign, assign_main, grade, grade_main, load_lab, new_notebook,
                            notebook_bytes, source_of, student_notebook, expect_close, expect, compare, find_lab, trial_seed,
                            seed_sweep)
from ganlab.sandbox import Limits, Sandbox, SandboxError, ReplyError, check_reply, sandbox_problem, seccomp_program

LIMITS = Limits(cell_timeout=5.)
# Where bubblewrap cannot run, these tests grade in the explicit unsafe mode (rlimits and the audit hook), which
# every result records; tests/test_hostile.py (the attacks) needs bubblewrap. CI sets GANLAB_REQUIRE_SANDBOX=1.
UNSAFE = sandbox_problem() is not None and os.environ.get('GANLAB_REQUIRE_SANDBOX') != '1'
UNSAFE_ARGS = ['--unsafe-no-sandbox'] if UNSAFE else []
needs_sandbox = pytest.mark.skipif(UNSAFE, reason=f'bubblewrap cannot run here: {sandbox_problem()}')

# ---------------------------------------------------------------------------------------------------------------
# A fixture lab: five graded functions, each of which can exhibit a classic GAN bug.
D_LOSS = '''#| graded
import math, torch
import torch.nn.functional as F
def d_loss(real_logits, fake_logits):
    "D minimises -[log D(x) + log(1 - D(G(z)))], batch mean."
    ### BEGIN SOLUTION hint: use F.logsigmoid
    return -(F.logsigmoid(real_logits) + F.logsigmoid(-fake_logits)).mean()
    ### END SOLUTION'''
GP = '''#| graded
import torch
import torch.nn.functional as F
def gradient_penalty(grads):
    "Mean over samples of (||grad_i||_2 - 1)^2, the norm per sample over all features."
    ### BEGIN SOLUTION
    return ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()
    ### END SOLUTION'''
CLS = '''#| graded
import torch
import torch.nn.functional as F
def class_loss(logits, labels):
    "Cross-entropy of an auxiliary classifier head, from logits."
    ### BEGIN SOLUTION
    return F.cross_entropy(logits, labels)
    ### END SOLUTION'''
DETACH = '''#| graded
import torch
import torch.nn.functional as F
def d_fake_loss(w, z):
    "D's loss on fakes G(z) = w * z, with D(x) = sum of x: the generator must get no gradient from D's step."
    fake = w * z
    ### BEGIN SOLUTION
    fake = fake.detach()
    ### END SOLUTION
    return F.softplus(fake.sum(1)).mean()'''
FIT = '''#| graded
import torch
import torch.nn.functional as F
def fit_mean(data, steps):
    "Estimate the mean of `data` by gradient descent on the squared error."
    ### BEGIN SOLUTION
    mu = torch.zeros(data.shape[1], requires_grad=True)
    opt = torch.optim.SGD([mu], lr=0.1)
    for _ in range(steps):
        opt.zero_grad(); ((data - mu) ** 2).sum(1).mean().backward(); opt.step()
    return mu.detach()
    ### END SOLUTION'''
HIDDEN = '''### BEGIN HIDDEN TESTS
from ganlab.grading import Item
def _closeness(out, ref, inputs):
    err = (out - inputs['data'].mean(0)).abs().max().item()
    return (1.0 if err < 0.05 else 0.0), f'max error of the mean {err:.3f}'
GRADING = [
    Item('d_loss', points=2, inputs=lambda g: dict(real_logits=torch.randn(16, generator=g), fake_logits=torch.randn(16, generator=g)),
         hint='D minimises -[log D(x) + log(1 - D(G(z)))]', timeout=4),
    Item('gradient_penalty', points=2, inputs=lambda g: dict(grads=torch.randn(8, 3, 4, 4, generator=g) * 0.3), hint='one norm per sample'),
    Item('class_loss', points=1, inputs=lambda g: dict(logits=torch.randn(10, 5, generator=g) * 3, labels=torch.randint(5, (10,), generator=g)),
         hint='cross_entropy takes logits'),
    Item('d_fake_loss', points=2, inputs=lambda g: dict(w=torch.randn(4, 3, generator=g), z=torch.randn(4, 3, generator=g)),
         call="""def call(f, w, z):
    w = w.clone().requires_grad_()
    loss = f(w, z)
    if loss.requires_grad: loss.backward()
    return [loss.detach(), w.grad if w.grad is not None else torch.zeros_like(w)]""", hint='detach the fakes in D\\'s step'),
    Item('fit_mean', points=1, inputs=lambda g: dict(data=torch.randn(64, 2, generator=g) + 3, steps=100), reference=False,
         score=_closeness, trials=1, timeout=20),
]
### END HIDDEN TESTS'''
CELLS = [('markdown', '# Lab 7: fixture\n\nA small lab for the grader tests.'),
         ('code', 'import math, torch\nfrom ganlab.grading import expect_close, expect'),
         ('code', D_LOSS),
         ('code', "expect_close(d_loss(torch.zeros(1), torch.zeros(1)), 2 * math.log(2), call='d_loss(real_logits=[0.], fake_logits=[0.])')"),
         ('code', GP), ('code', CLS), ('code', DETACH), ('code', FIT), ('code', HIDDEN)]
MAX = 8.0


def write_lab(folder: Path, cells=CELLS, name='lab7_fixture.ipynb') -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name; p.write_bytes(notebook_bytes(new_notebook(cells))); return p


def _dedent(src: str) -> str:
    "Sources below are written indented after their first line: a `def` line keeps its body, a statement line dedents the rest."
    first, _, rest = src.partition('\n')
    return src if first.rstrip().endswith(':') else first + '\n' + textwrap.dedent(rest)


def submission(tmp: Path, name: str, replace: dict[str, str] | None = None, extra: list[str] = ()) -> Path:
    "The fixture lab's graded cells with some functions' cells replaced (by function name) and extra graded cells first."
    cells = [s for k, s in CELLS if s.startswith('#| graded')]
    for fn, src in (replace or {}).items():
        cells = [('#| graded\nimport torch, math\nimport torch.nn.functional as F\n' + _dedent(src)) if f'def {fn}(' in c else c for c in cells]
    cells = ['#| graded\n' + textwrap.dedent(e) for e in extra] + cells
    p = tmp / f'{name}.ipynb'
    p.write_bytes(notebook_bytes(new_notebook([('code', c) for c in cells]))); return p


@pytest.fixture(scope='module')
def lab_env(tmp_path_factory):
    root = tmp_path_factory.mktemp('grading')
    lab = write_lab(root / 'labs')
    subs = root / 'subs'; subs.mkdir()
    with Grader(lab, limits=LIMITS, unsafe=UNSAFE) as g: yield g, lab, subs


def scores(res): return {i.name: i.score for i in res.items}
def outputs(res): return {i.name: i.output for i in res.items}
FULL = {'d_loss': 2, 'gradient_penalty': 2, 'class_loss': 1, 'd_fake_loss': 2, 'fit_mean': 1}

# ---------------------------------------------------------------------------------------------------------------
# expect / expect_close / compare

def test_expect_messages():
    with pytest.raises(AssertionError, match=r'^d_loss\(real_logits=\[0\.\], fake_logits=\[0\.\]\): expected 1.3863, got -1.3863 '
                                             r'\(\|diff\| 2.77 > tol 0.00014\)\nHint: logsigmoid$'):
        expect_close(torch.tensor(-1.3863), torch.tensor(1.3863), call='d_loss(real_logits=[0.], fake_logits=[0.])', hint='logsigmoid')
    with pytest.raises(AssertionError, match='expected shape'): expect_close(torch.ones(2, 3), torch.ones(3, 2), call='f()')
    with pytest.raises(AssertionError, match=r'^g\(\): expected a scalar, got shape \(4,\)$'):
        expect(False, call='g()', expected='a scalar', got='shape (4,)')
    expect_close((torch.ones(2), 3.0, {'a': [1, 2]}), (torch.ones(2), 3.0, {'a': [1, 2]}), call='f()')
    assert 'expected a tensor' in compare(3, torch.ones(3))[1] and 'keys' in compare({'a': 1}, {'b': 1})[1]


def test_item_argument_errors():
    with pytest.raises(ValueError, match='trials: expected an int >= 1, got 0'): Item('f', 1, trials=0)
    with pytest.raises(ValueError, match='score: expected a score callable when reference=False'): Item('f', 1, reference=False)
    with pytest.raises(ValueError, match='function: expected a Python identifier'): Item('f', 1, function='not valid')
    assert Item('d_loss', 2).function == 'd_loss' and trial_seed(1, 'a', 0) != trial_seed(1, 'a', 1)

# ---------------------------------------------------------------------------------------------------------------
# assign: student versions, --check, malformed markers

def test_assign_round_trip(tmp_path):
    lab = write_lab(tmp_path / 'labs')
    r = assign(directory=tmp_path / 'labs')
    assert r['written'] == ['lab7_fixture.ipynb'] and (tmp_path / 'labs/student/.notest').exists()
    out = tmp_path / 'labs/student/lab7_fixture.ipynb'
    data = out.read_bytes(); nb = json.loads(data)
    text = json.dumps(nb)
    assert 'BEGIN SOLUTION' not in text and 'HIDDEN' not in text and 'GRADING' not in text and 'logsigmoid(real' not in text
    assert nb['metadata'] == {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    assert len(nb['cells']) == len(CELLS) - 1                        # the hidden-tests cell is gone
    d = source_of(nb['cells'][2]).splitlines()
    assert d[-2:] == ['    # YOUR CODE HERE', '    raise NotImplementedError("use F.logsigmoid")']
    assert source_of(nb['cells'][6]).splitlines()[-4:-1] == ['    fake = w * z', '    # YOUR CODE HERE', '    raise NotImplementedError()']
    assert all(c.get('outputs', []) == [] and c['metadata'] == {} for c in nb['cells'])
    # deterministic, and already what nbdev-clean would leave
    assert assign(directory=tmp_path / 'labs')['written'] == [] and out.read_bytes() == data
    clean = Path(sys.executable).parent / 'nbdev-clean'
    if clean.exists():
        subprocess.run([str(clean), '--fname', str(out)], check=True, cwd=Path(__file__).parent.parent, capture_output=True)
        assert out.read_bytes() == data


def test_assign_check(tmp_path, capsys):
    labs = tmp_path / 'labs'; write_lab(labs)
    assert assign_main(['--labs-dir', str(labs), '--check']) == 1
    assert 'missing:' in capsys.readouterr().out
    assert assign_main(['--labs-dir', str(labs)]) == 0
    assert assign_main(['--labs-dir', str(labs), '--check']) == 0
    write_lab(labs, CELLS[:-1] + [('code', HIDDEN.replace('points=2', 'points=3'))] + [('markdown', 'new cell')])
    (labs / 'student' / 'lab99_old.ipynb').write_text('{}')
    assert assign_main(['--labs-dir', str(labs), '--check']) == 1
    out = capsys.readouterr().out
    assert 'stale: ' in out and 'lab7_fixture.ipynb' in out and 'extra: ' in out and 'lab99_old.ipynb' in out
    (labs / 'student' / '.notest').unlink()
    assert assign_main(['--labs-dir', str(labs)]) == 0 and (labs / 'student' / '.notest').exists()


@pytest.mark.parametrize('cells, message', [
    ([('code', '#| graded\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n')], r'cell 0: line 3: BEGIN SOLUTION is never closed'),
    ([('code', '#| graded\ndef f():\n    return 1\n    ### END SOLUTION')], r'cell 0: line 4: END SOLUTION without a matching BEGIN'),
    ([('code', '#| graded\ndef f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n    ### END SOLUTION')], r'cell 0: line 4: .*cannot nest'),
    ([('code', '#| graded\ndef f(): return 1'), ('markdown', '### BEGIN HIDDEN TESTS\nGRADING = []\n### END HIDDEN TESTS')], r'cell 1: hidden tests outside a code cell'),
    ([('code', '#| graded\ndef f(): return 1')], r'no `GRADING = \[...\]` list'),
    ([('code', '#| graded\ndef f(): return 1'), ('code', '### BEGIN HIDDEN TESTS\nGRADING = []\n### END HIDDEN TESTS'),
      ('code', '### BEGIN HIDDEN TESTS\nGRADING = []\n### END HIDDEN TESTS')], r'cells \[1, 2\]: more than one GRADING'),
])
def test_malformed_markers(tmp_path, cells, message):
    labs = tmp_path / 'labs'; write_lab(labs, cells, 'lab5_bad.ipynb')
    with pytest.raises(LabFormatError, match=r'^lab5_bad\.ipynb: ' + message): assign(directory=labs)
    assert assign_main(['--labs-dir', str(labs)]) == 2


def test_load_lab_checks_items(tmp_path):
    labs = tmp_path / 'labs'
    write_lab(labs, [('code', '#| graded\ndef f(x): return x'),
                     ('code', "### BEGIN HIDDEN TESTS\nfrom ganlab.grading import Item\nGRADING = [Item('g', 1)]\n### END HIDDEN TESTS")], 'lab1_x.ipynb')
    with pytest.raises(LabFormatError, match=r"lab1_x.ipynb: cell 1: item 'g' grades `g`, which no `#\| graded` cell defines"): load_lab(labs / 'lab1_x.ipynb')
    with pytest.raises(ValueError, match=r"lab: expected one of 1 \(lab1_x\), got 4"): find_lab(4, labs)
    assert find_lab('x', labs) == find_lab('lab1', labs) == find_lab(1, labs) == labs / 'lab1_x.ipynb'

# ---------------------------------------------------------------------------------------------------------------
# Grading: the reference gets full marks; each bug loses points on its item only.

def test_reference_full_marks(lab_env):
    g, lab, subs = lab_env
    res = g.grade(lab, seed=123)
    assert scores(res) == FULL and res.score == res.max_score == MAX, outputs(res)
    assert res.seed == 123 and all(i.status == 'passed' for i in res.items)
    again = g.grade(lab)
    assert again.score == MAX and again.seed != 123                  # a fresh seed each time, recorded


def test_student_version_scores_zero_with_specific_messages(lab_env, tmp_path):
    g, lab, subs = lab_env
    assign([lab], tmp_path)
    res = g.grade(tmp_path / lab.name)
    assert res.score == 0
    out = outputs(res)
    assert 'is not implemented yet (NotImplementedError: use F.logsigmoid)' in out['d_loss'] and 'YOUR CODE HERE' in out['d_loss']
    assert 'Hint: D minimises' in out['d_loss']


BUGS = {
    'wrong_sign': ('d_loss', '''def d_loss(real_logits, fake_logits):
        return (F.logsigmoid(real_logits) + F.logsigmoid(-fake_logits)).mean()''', 'expected '),
    'whole_batch_norm': ('gradient_penalty', '''def gradient_penalty(grads):
        return (grads.norm() - 1) ** 2''', 'expected '),
    'softmax_before_ce': ('class_loss', '''def class_loss(logits, labels):
        return F.cross_entropy(F.softmax(logits, dim=1), labels)''', 'expected '),
    'missing_detach': ('d_fake_loss', '''def d_fake_loss(w, z):
        fake = w * z
        return F.softplus(fake.sum(1)).mean()''', 'at [1]'),
    'wrong_shape': ('gradient_penalty', '''def gradient_penalty(grads):
        return (grads.flatten(1).norm(dim=1) - 1) ** 2''', 'expected shape (), got shape (8,)'),
    'wrong_type': ('class_loss', '''def class_loss(logits, labels):
        return "a loss"''', 'expected a tensor'),
    'bad_fit': ('fit_mean', '''def fit_mean(data, steps):
        return torch.zeros(data.shape[1])''', 'max error of the mean'),
}

@pytest.mark.parametrize('bug', list(BUGS))
def test_bug_loses_points_on_its_item_only(lab_env, bug):
    g, lab, subs = lab_env
    fn, src, message = BUGS[bug]
    res = g.grade(submission(subs, bug, {fn: src}), seed=7)
    assert scores(res) == dict(FULL, **{fn: 0}), outputs(res)
    out = outputs(res)[fn]
    assert message in out and out.startswith('Trial 1 of ') and f'{fn}(' in out and 'Hint' in out or bug == 'bad_fit', out

# ---------------------------------------------------------------------------------------------------------------
# Hostile submissions: each breaks some items, gets zero there with a clear message, and nothing else.

LAB_PATH = '{lab}'
HOSTILE = {
    # loops, exits and crashes inside functions: the child is stopped or restarted, later items are graded
    'loop_exit_crash_in_functions': ({
        'd_loss': '''def d_loss(real_logits, fake_logits):
            while True: pass''',
        'gradient_penalty': '''def gradient_penalty(grads):
            import sys; sys.exit(0)''',
        'class_loss': '''def class_loss(logits, labels):
            import os; os._exit(0)''',
        'fit_mean': '''def fit_mean(data, steps):
            return torch.empty(10**12)'''}, [],
        {'d_loss': 'did not return within', 'gradient_penalty': 'called sys.exit(0)', 'class_loss': 'the process ended during the call',
         'fit_mean': 'ran out of memory'}),
    # exits and exceptions while the cells run (at import)
    'os_exit_at_import': ({'d_loss': '''import os
        os._exit(0)
        def d_loss(real_logits, fake_logits): return 0'''}, [], {'d_loss': 'failed when it ran: the process ended while it ran'}),
    'sys_exit_and_raise_at_import': ({'d_loss': '''import sys
        sys.exit(0)
        def d_loss(real_logits, fake_logits): return 0''',
        'class_loss': '''raise RuntimeError("boom at import")
        def class_loss(logits, labels): return 0'''}, [],
        {'d_loss': 'failed when it ran: called sys.exit(0)', 'class_loss': 'failed when it ran: RuntimeError: boom at import'}),
    'loop_at_import': ({'gradient_penalty': '''while True: pass
        def gradient_penalty(grads): return 0'''}, [], {'gradient_penalty': 'longer than 5 s'}),
    # printing 100 MB: stopped by the file-size limit
    'print_100mb': ({'d_loss': '''def d_loss(real_logits, fake_logits):
            for _ in range(100): print('x' * 2**20)
            return -(F.logsigmoid(real_logits) + F.logsigmoid(-fake_logits)).mean()'''}, [], {'d_loss': 'passed the size limit'}),
    # patching torch and ganlab.grading in the child changes nothing: wrong answers stay wrong
    'patch_torch_and_grader': ({'d_loss': '''import ganlab.grading
        torch.allclose = lambda *a, **k: True
        torch.Tensor.__eq__ = lambda *a, **k: True
        torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
        ganlab.grading.compare = lambda *a, **k: (True, '')
        ganlab.grading.grade_item = None
        def d_loss(real_logits, fake_logits): return torch.tensor(0.)'''}, [], {'d_loss': 'expected '}),
    # reading the lab source (solutions, hidden tests), directly, through a symlink, or by listing its folder
    'read_solutions': ({'d_loss': f'''import os
        def d_loss(real_logits, fake_logits):
            return open({LAB_PATH!r}).read()''',
        'gradient_penalty': f'''import os
        def gradient_penalty(grads):
            os.symlink({LAB_PATH!r}, 'link.ipynb'); return open('link.ipynb').read()''',
        'class_loss': f'''import os
        def class_loss(logits, labels): return os.listdir(os.path.dirname({LAB_PATH!r}))'''}, [],
        {'d_loss': 'not allowed', 'gradient_penalty': 'not allowed', 'class_loss': 'not allowed'}),
    # writing the results file, spawning processes, opening a socket
    'write_spawn_socket': ({'d_loss': '''def d_loss(real_logits, fake_logits):
            open({RESULTS!r}, 'w').write('{{"score": 100}}')''',
        'gradient_penalty': '''import subprocess
        def gradient_penalty(grads): return subprocess.run(['echo', 'hi'], capture_output=True).stdout''',
        'class_loss': '''import os
        def class_loss(logits, labels): return os.system('echo hi') or os.fork()''',
        'd_fake_loss': '''import socket
        def d_fake_loss(w, z): return socket.create_connection(('example.com', 80))''',
        'fit_mean': '''import os
        def fit_mean(data, steps): return os.fork()'''}, [],
        {'d_loss': 'not allowed', 'gradient_penalty': 'subprocess.Popen is not allowed', 'class_loss': 'os.system is not allowed',
         'd_fake_loss': 'socket', 'fit_mean': 'os.fork is not allowed'}),
}

@pytest.mark.parametrize('case', list(HOSTILE))
def test_hostile_submission(lab_env, case, tmp_path):
    g, lab, subs = lab_env
    replace, extra, expected = HOSTILE[case]
    results = tmp_path / 'results'; results.mkdir()
    replace = {k: v.replace('{RESULTS!r}', repr(str(results / 'results.json'))).replace('{{', '{').replace('}}', '}')
                   .replace(repr(LAB_PATH), repr(str(lab))) for k, v in replace.items()}
    t0 = time.monotonic()
    res = g.grade(submission(subs, case, replace, extra))
    assert time.monotonic() - t0 < 90
    got = scores(res)
    assert got == dict(FULL, **{k: 0 for k in expected}), outputs(res)
    for fn, msg in expected.items(): assert msg in outputs(res)[fn], (fn, outputs(res)[fn])
    assert not (results / 'results.json').exists() and lab.exists()
    # nothing leaked into what the student sees
    text = json.dumps(res.gradescope())
    assert 'logsigmoid(real_logits) + F.logsigmoid(-fake_logits)).mean()\\n    ### END' not in text and 'GRADING' not in text


def test_clean_submission_after_hostile_ones(lab_env):
    g, lab, subs = lab_env
    assert g.grade(submission(subs, 'clean')).score == MAX


def test_sandbox_environment_and_limits(tmp_path):
    cells = ['''
import os, sys, resource
def env(): return sorted(os.environ)
def cwd(): return os.getcwd()
def limits(): return [resource.getrlimit(r)[0] for r in (resource.RLIMIT_AS, resource.RLIMIT_FSIZE, resource.RLIMIT_CORE)]
def flags(): return [sys.flags.isolated, 'PYTHONPATH' in os.environ]
def ctypes_call():
    import ctypes; return ctypes.CDLL(None).getpid()
''']
    with Sandbox(cells, Limits(memory_mb=4096, file_mb=8), unsafe=UNSAFE) as sb:
        assert set(sb.call('env').value) <= {'PATH', 'HOME', 'TMPDIR', 'LANG', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
                                             'CUDA_VISIBLE_DEVICES', 'MPLBACKEND', 'PYTHONDONTWRITEBYTECODE', 'PYTHONUNBUFFERED', 'LC_CTYPE', 'PWD'}
        assert sb.call('cwd').value == (str(sb.base / 'work1') if UNSAFE else '/sandbox')
        assert sb.call('limits').value == [4096 << 20, 8 << 20, 0]
        assert sb.call('flags').value == [1, False]
        assert 'ctypes.dlopen is not allowed' in sb.call('ctypes_call').error
        bad = sb.call('env', {'x': 1})
        assert not bad.ok and 'TypeError' in bad.error
    assert not sb.base.exists()


def test_unsafe_mode_is_explicit_and_recorded(lab_env, tmp_path):
    "--unsafe-no-sandbox: results.json (extra_data) and the report say so; without it, no such note."
    g, lab, subs = lab_env
    out = tmp_path / 'out'
    assert grade_main([str(lab), '--lab', str(lab), '--out', str(out), '--seed', '5', '--unsafe-no-sandbox']) == 0
    r = json.loads((out / 'results.json').read_text())
    assert r['score'] == MAX and r['extra_data']['unsafe_no_sandbox'] is True
    assert r['extra_data']['isolation']['sandbox'] == 'none (--unsafe-no-sandbox)' and r['output'].startswith('WARNING: graded with --unsafe-no-sandbox')
    assert 'WARNING: graded with --unsafe-no-sandbox' in (out / 'report.md').read_text()
    if not UNSAFE:
        assert grade_main([str(lab), '--lab', str(lab), '--out', str(out), '--force']) == 0
        r = json.loads((out / 'results.json').read_text())
        assert 'unsafe_no_sandbox' not in r['extra_data'] and r['extra_data']['isolation']['sandbox'] == 'bubblewrap'


def test_refuses_when_the_sandbox_cannot_be_set_up(lab_env, tmp_path, monkeypatch, capsys):
    "No bubblewrap (or no user namespaces): Sandbox raises, ganlab-grade exits 4 naming the fix, and writes nothing."
    g, lab, subs = lab_env
    import ganlab.sandbox
    monkeypatch.setattr(ganlab.sandbox, '_PROBLEM', ['the sandbox needs bwrap, not found on PATH (bubblewrap). ' + ganlab.sandbox._FIX])
    with pytest.raises(SandboxError, match='apt-get install bubblewrap'):
        Sandbox(['x = 1'])
    out = tmp_path / 'out'
    assert grade_main([str(lab), '--lab', str(lab), '--out', str(out)]) == 4
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'cannot grade safely' in err and '--unsafe-no-sandbox' in err and not out.exists()


def test_reply_limits():
    "Replies are plain data within limits: depth, number of values, materialised bytes, 64-bit integers, key types."
    lim = Limits(max_reply_mb=1, max_reply_depth=5, max_reply_items=100)
    check_reply({'id': 1, 'value': [torch.zeros(10), 2 ** 62, 'text', None, 1.5, (True, 2j)]}, lim)
    nested = []
    for _ in range(6): nested = [nested]
    cases = [(nested, 'nested more than 5'), (list(range(200)), 'more than 100 values'),
             (torch.zeros(1).expand(1 << 20), 'larger than the 1 MB'), (2 ** 64, '64 bits'),
             ({(1, 2): 3}, 'keys'), (torch.nn.Parameter(torch.zeros(1)), 'not plain data'),
             (torch.zeros(2).to_sparse(), 'dense CPU'), ('x' * (2 << 20), 'larger than')]
    for value, message in cases:
        with pytest.raises(ReplyError, match=re.escape(message)): check_reply(value, lim)


def test_seccomp_program_shape():
    program = seccomp_program()
    if program is None: pytest.skip('seccomp filter only on x86-64')
    from ganlab.sandbox import _DENIED_SYSCALLS
    assert len(program) == 8 * (len(_DENIED_SYSCALLS) + 7) and program[-8:-4] == bytes([6, 0, 0, 0])

# ---------------------------------------------------------------------------------------------------------------
# The command line

def test_grade_cli(lab_env, tmp_path, capsys):
    g, lab, subs = lab_env
    out = tmp_path / 'out'
    assert grade_main(UNSAFE_ARGS + [str(lab), '--lab', str(lab), '--out', str(out), '--seed', '5']) == 0
    r = json.loads((out / 'results.json').read_text())
    assert r['score'] == MAX and r['extra_data']['seed'] == 5 and 'execution_time' in r and r['stdout_visibility'] in ('hidden', 'visible')
    assert [t['name'] for t in r['tests']] == list(FULL) and all(set(t) >= {'name', 'score', 'max_score', 'output', 'visibility'} for t in r['tests'])
    assert '**Score: 8 / 8**' in (out / 'report.md').read_text()
    # never replaced silently
    assert grade_main(UNSAFE_ARGS + [str(lab), '--lab', str(lab), '--out', str(out)]) == 3 and 'pass --force' in capsys.readouterr().err
    # an unreadable submission gets a clean zero, not a traceback
    bad = tmp_path / 'broken.ipynb'; bad.write_text('{"cells": [ not json')
    assert grade_main(UNSAFE_ARGS + [str(bad), '--lab', str(lab), '--out', str(out), '--force']) == 0
    r = json.loads((out / 'results.json').read_text())
    assert r['score'] == 0 and 'not a valid notebook' in r['output'] and all('not a valid notebook' in t['output'] for t in r['tests'])
    notnb = tmp_path / 'list.ipynb'; notnb.write_text('[1, 2]')
    assert grade_main(UNSAFE_ARGS + [str(notnb), '--lab', str(lab), '--out', str(out), '--force']) == 0
    assert 'not a Jupyter notebook' in json.loads((out / 'results.json').read_text())['output']
    # bad --lab values list the valid ones
    assert grade_main(UNSAFE_ARGS + [str(lab), '--lab', '9', '--labs-dir', str(lab.parent), '--out', str(out)]) == 2
    assert "expected one of 7 (lab7_fixture)" in capsys.readouterr().err


def test_grade_folder_csv(lab_env, tmp_path):
    g, lab, subs = lab_env
    folder = tmp_path / 'subs'; folder.mkdir()
    shutil.copy(lab, folder / 'alice.ipynb')
    (folder / 'bob.ipynb').write_text('not a notebook')
    out = tmp_path / 'grades'
    assert grade_main(UNSAFE_ARGS + [str(folder), '--lab', str(lab), '--out', str(out), '--seed', '3']) == 0
    rows = (out / 'grades.csv').read_text().splitlines()
    assert rows[0] == 'submission,score,max_score,seed,' + ','.join(FULL)
    assert rows[1] == 'alice.ipynb,8,8,3,2,2,1,2,1' and rows[2] == 'bob.ipynb,0,8,3,0,0,0,0,0'
    assert (out / 'alice' / 'results.json').exists() and (out / 'bob' / 'report.md').exists()


def _exit_status(main, argv) -> int:
    "A command's exit status, whether it returns it or argparse raises SystemExit."
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def _bad_grade_inputs(tmp: Path, lab: Path) -> list[tuple[list[str], str]]:
    afile = tmp / 'afile.txt'
    afile.write_text('x')
    sub = str(lab)
    return [
        ([sub, '--lab', str(lab), '--seed', 'abc'], "--seed: expected an integer in [0, 2**63), got 'abc'"),
        ([sub, '--lab', str(lab), '--seed', '-1'], "--seed: expected an integer in [0, 2**63), got '-1'"),
        ([sub, '--lab', str(lab), '--seed', '1e9'], "--seed: expected an integer in [0, 2**63), got '1e9'"),
        ([sub, '--lab', str(lab), '--seed', str(2 ** 63)], '--seed: expected an integer in [0, 2**63)'),
        ([sub, '--lab', str(lab), '--time-limit', '0'], "--time-limit: expected a positive number of seconds, got '0'"),
        ([sub, '--lab', str(lab), '--time-limit', 'nan'], "--time-limit: expected a positive number of seconds, got 'nan'"),
        ([sub, '--lab', str(lab), '--time-limit', '-5'], "--time-limit: expected a positive number of seconds, got '-5'"),
        ([sub, '--lab', str(lab), '--labs-dir', str(tmp / 'nowhere')], '--labs-dir: expected an existing folder'),
        ([sub, '--lab', str(lab), '--out', str(afile)], '--out: expected a folder (existing or new)'),
        ([sub, '--lab', str(lab), '--out', str(afile / 'sub')], '--out: expected a folder (existing or new)'),
        ([sub, '--lab', '99', '--labs-dir', str(lab.parent)], "lab: expected one of 7 (lab7_fixture), got '99'"),
        ([str(tmp / 'missing.ipynb'), '--lab', str(lab)], 'submissions: expected notebooks or folders'),
        ([sub], '--lab: expected a value, got nothing'),
        ([sub, '--lab', str(lab), '--frobnicate'], 'unrecognized arguments: --frobnicate'),
    ]


def test_bad_input_is_one_line_exit_2_and_changes_nothing(lab_env, tmp_path, capsys):
    "Every bad argument of ganlab-grade and ganlab-assign: one line naming it, exit status 2, nothing written."
    g, lab, subs = lab_env
    out = tmp_path / 'grading'
    cases = [(grade_main, argv + ['--out', str(out)] if '--out' not in argv else argv, message)
             for argv, message in _bad_grade_inputs(tmp_path, lab)]
    afile = tmp_path / 'afile.txt'
    cases += [(assign_main, ['--labs-dir', str(tmp_path / 'nowhere')], '--labs-dir: expected an existing folder'),
              (assign_main, ['--labs-dir', str(lab.parent), '--out', str(afile)], '--out: expected a folder (existing or new)'),
              (assign_main, ['--labs-dir', str(lab.parent), '9'], "lab: expected one of 7 (lab7_fixture), got '9'"),
              (assign_main, ['--labs-dir', str(lab.parent), '--gradescope', '7', str(tmp_path)], '--gradescope: expected a zip file name'),
              (assign_main, ['--labs-dir', str(lab.parent), '--gradescope', '9', str(tmp_path / 'x.zip')], "lab: expected one of")]
    before = sorted(p.name for p in tmp_path.iterdir())
    os.environ['GANLAB_SANDBOX_MEMORY_MB'] = 'lots'
    try:
        assert grade_main([str(lab), '--lab', str(lab), '--out', str(out)]) == 2
    finally:
        del os.environ['GANLAB_SANDBOX_MEMORY_MB']
    assert capsys.readouterr().err == "ganlab-grade: GANLAB_SANDBOX_MEMORY_MB: expected a positive integer, got 'lots'\n"
    for main, argv, message in cases:
        assert _exit_status(main, argv) == 2, argv
        err = capsys.readouterr().err
        prog = 'ganlab-grade' if main is grade_main else 'ganlab-assign'
        assert err.count('\n') == 1 and err.startswith(f'{prog}: ') and message in err and 'Traceback' not in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before and not (lab.parent / 'student').exists()


def test_batch_result_folders_are_distinct_and_safe(lab_env, tmp_path):
    "Same names in two folders, a name made of dots: each submission gets its own folder under OUT, and a row."
    g, lab, subs = lab_env
    folder = tmp_path / 'subs'
    for rel in ('a/x.ipynb', 'b/x.ipynb', '..ipynb'):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text('not a notebook')
    out = tmp_path / 'grades'
    assert grade_main(UNSAFE_ARGS + [str(folder), '--lab', str(lab), '--out', str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ['grades.csv', 'submission', 'x', 'x-2']
    assert len((out / 'grades.csv').read_text().splitlines()) == 4
    assert all(json.loads((out / d / 'results.json').read_text())['score'] == 0 for d in ('submission', 'x', 'x-2'))


def test_report_quotes_submission_text_in_fences():
    "Backticks and Markdown in a message or in printed output cannot close the code block and fake a score."
    from ganlab.grading import GradeResult, ItemResult
    r = GradeResult('lab7', 'sub**Score: 9**.ipynb', 3, [ItemResult('d_loss', 0., 2., 'x\n```\n**Score: 2 / 2**\n````')],
                    stdout='`````\n**Score: 2 / 2**', isolation={'sandbox': 'bubblewrap'})
    text = r.report()
    fence = None
    outside = []
    for line in text.splitlines():
        if fence is None and line.startswith('```'):
            fence = line.removesuffix('text')
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            outside.append(line)
    assert [l for l in outside if l.startswith('**')] == ['**Score: 0 / 2**  (seed 3, 0.0 s)'], text
    assert text.splitlines()[0] == '# lab7: sub\\*\\*Score: 9\\*\\*\\.ipynb'


def test_help_is_the_manual(capsys):
    for main, words in ((grade_main, ['results.json', 'grades.csv', '--force', '--seed']), (assign_main, ['--check', 'NotImplementedError'])):
        with pytest.raises(SystemExit): main(['--help'])
        text = capsys.readouterr().out
        assert all(w in text for w in words), text


def test_gradescope_mode_and_zip(lab_env, tmp_path):
    g, lab, subs = lab_env
    upload = tmp_path / 'submission'; upload.mkdir()
    out = tmp_path / 'results'
    assert grade_main(UNSAFE_ARGS + [str(upload), '--lab', str(lab), '--out', str(out), '--gradescope']) == 0
    r = json.loads((out / 'results.json').read_text())
    assert r['score'] == 0 and 'no .ipynb file was submitted' in r['output'] and len(r['tests']) == len(FULL)
    (upload / 'a.ipynb').write_text('{}'); (upload / 'b.ipynb').write_text('{}')
    assert grade_main(UNSAFE_ARGS + [str(upload), '--lab', str(lab), '--out', str(out), '--gradescope', '--force']) == 0
    assert '2 notebooks were submitted (a.ipynb, b.ipynb): submit one' in json.loads((out / 'results.json').read_text())['output']
    # the zip Gradescope gets: both scripts (executable), the package, the lab source and its name
    import zipfile
    z = tmp_path / 'lab7.zip'
    assert assign_main(['--gradescope', '7', str(z), '--labs-dir', str(lab.parent)]) == 0
    with zipfile.ZipFile(z) as f:
        names = set(f.namelist())
        assert {'setup.sh', 'run_autograder', 'pyproject.toml', 'constraints.txt', 'ganlab/grading.py', 'ganlab/sandbox.py',
                'nbs/labs/lab7_fixture.ipynb', 'LAB'} <= names
        assert f.read('LAB').decode().strip() == 'lab7_fixture' and (f.getinfo('run_autograder').external_attr >> 16) & 0o111
        setup, run = f.read('setup.sh').decode(), f.read('run_autograder').decode()
        assert 'apt-get install' in setup and ' bubblewrap ' in setup and 'sandbox_problem' in setup
        assert '--unsafe-no-sandbox' not in run.replace('Never add\n# --unsafe-no-sandbox', '')


@needs_sandbox
def test_hidden_folders_invisible_even_from_cpp(tmp_path):
    "The audit hook cannot see C++ file access (torch's from_file); the lab folder is not in the sandbox's view at all."
    secret = tmp_path / 'labs'; secret.mkdir(); (secret / 'lab1_x.ipynb').write_text('SOLUTION' * 10)
    cells = ['import torch\ndef cread(path): return torch._C._VariableFunctions.from_file(path, False, 8, dtype=torch.uint8)']
    with Sandbox(cells, hidden=[secret]) as sb:
        r = sb.call('cread', {'path': str(secret / 'lab1_x.ipynb')})
        assert not r.ok and 'No such file' in r.error, r
        import ganlab
        seen = sb.call('cread', {'path': ganlab.__file__})          # the control: a file in the view is read
        assert seen.ok and bytes(seen.value.tolist()) == Path(ganlab.__file__).read_bytes()[:8]


def test_time_limit_for_the_whole_submission(lab_env):
    g, lab, subs = lab_env
    t0 = time.monotonic()
    res = g.grade(submission(subs, 'slow', {'d_loss': '''def d_loss(real_logits, fake_logits):
            while True: pass'''}), time_limit=6)
    assert time.monotonic() - t0 < 60
    out = outputs(res)
    assert res.score == 0 and 'did not return within' in out['d_loss'] and 'Not run: the time limit' in out['gradient_penalty'], out


def test_seed_sweep_scores_in_process_over_seeds(tmp_path):
    """`seed_sweep` (trusted code, no sandbox): the reference keeps full marks on every seed, a whole-batch norm loses
    its item on every seed and no other, and the sweep reports the seeds it ran."""
    lab = write_lab(tmp_path / 'labs')
    table = seed_sweep(lab, seeds=3)
    assert {k: (r['min'], r['seeds']) for k, r in table.items()} == {k: (float(v), 3) for k, v in FULL.items()}
    cells = new_notebook([('code', c.replace('grads.flatten(1).norm(dim=1)', 'grads.norm()')) for k, c in CELLS
                          if c.startswith('#| graded')])
    bad = seed_sweep(lab, cells, seeds=3)
    assert [k for k, r in bad.items() if r['min'] < r['points']] == ['gradient_penalty']
    assert bad['gradient_penalty']['mean'] == 0
