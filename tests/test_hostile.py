"""Hostile submissions, one test per attack class of issue 13, each against the OS-level sandbox (bubblewrap).

Every test grades a submission of a small fixture lab and asserts: the score the submission deserves (the attack
earns nothing; the honest items keep their points), an intact and truthful `results.json` and `report.md` written by
the grader, no file and no process left behind outside the sandbox (attacks name them with a marker), and a live
grader. Most attacks first get past the audit hook (a fresh `_posixsubprocess`, then `/bin/sh` or an unhooked Python
inside the sandbox), so what stops them is the kernel boundary, not the hook.

Run as root, the suite also runs itself again as `nobody` (`test_the_suite_passes_as_an_unprivileged_user`)."""
import json, os, re, shlex, shutil, socket, subprocess, sys, textwrap, time
from pathlib import Path
import pytest, torch
from ganlab.grading import Grader, grade_main, new_notebook, notebook_bytes, write_results
from ganlab.sandbox import Sandbox, sandbox_problem

if sandbox_problem():
    if os.environ.get('GANLAB_REQUIRE_SANDBOX') == '1':
        raise RuntimeError(sandbox_problem())
    pytest.skip(f'bubblewrap cannot run here: {sandbox_problem()}', allow_module_level=True)
if sys.version_info[:2] not in ((3, 11), (3, 12)):
    pytest.skip('the attacks call _posixsubprocess.fork_exec with the signature of Python 3.11/3.12',
                allow_module_level=True)

MARK = f'ganlab-hostile-{os.getpid()}'           # every file or process an attack leaves is named with it
ROOT = os.geteuid() == 0

# ---------------------------------------------------------------------------------------------------------------
# The fixture lab: two small functions and a training item graded by the state-dict protocol.
ADD = '#| graded\ndef add(x, y):\n    return x + y'
SCALE = '#| graded\ndef scale(x):\n    return 3 * x'
FIT = '''#| graded
import torch
def fit_bias(g_init, target, steps):
    "Train the given nn.Linear(1, 1) (weights g_init) so that its output at 0 approaches target; return it."
    net = torch.nn.Linear(1, 1)
    net.load_state_dict(g_init)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        ((net(torch.zeros(1, 1)) - target) ** 2).sum().backward()
        opt.step()
    return net'''
HIDDEN = '''### BEGIN HIDDEN TESTS
import torch
from ganlab.grading import Item
CALL_FIT = """
def call(f, g_init, target, steps):
    return f(g_init, target, steps).state_dict()
"""
def _fit_inputs(g):
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(1000, (1,), generator=g)))
        init = torch.nn.Linear(1, 1).state_dict()
    return dict(g_init=init, target=float(torch.randn((), generator=g)), steps=200)
def _score_fit(out, ref, inputs):
    "The grader's own nn.Linear(1, 1), loaded with the returned weights, evaluated at 0."
    init = inputs['g_init']
    if not (isinstance(out, dict) and set(out) == set(init) and all(torch.is_tensor(out[k]) and out[k].shape == init[k].shape for k in init)):
        return 0., 'the trained network is not the nn.Linear(1, 1) it was given'
    net = torch.nn.Linear(1, 1)
    net.load_state_dict(out)
    err = abs(net(torch.zeros(1, 1)).item() - inputs['target'])
    return (1. if err < 1e-3 else 0.), f'output at 0 off by {err:.2g}'
GRADING = [
    Item('add', points=2, inputs=lambda g: dict(x=torch.randn(3, generator=g), y=torch.randn(3, generator=g)), trials=1, timeout=30),
    Item('scale', points=1, inputs=lambda g: dict(x=torch.randn(3, generator=g)), trials=1, timeout=30),
    Item('fit_bias', points=2, inputs=_fit_inputs, call=CALL_FIT, reference=False, score=_score_fit, trials=1, timeout=30),
]
### END HIDDEN TESTS'''
FULL = {'add': 2, 'scale': 1, 'fit_bias': 2}

# Past the audit hook: a fresh _posixsubprocess runs /bin/sh inside the sandbox; `_py` runs an unhooked Python.
PAST_THE_HOOK = '''#| graded
import os, sys, shlex
def _sh(script):
    import _posixsubprocess
    r, w = os.pipe()
    er, ew = os.pipe()
    args = [b'/bin/sh', b'-c', script.encode()]
    pid = _posixsubprocess.fork_exec(args, [args[0]], True, (), None, None, -1, -1, -1, w, -1, w, er, ew,
                                     True, False, -1, None, None, -1, -1, None, False)
    os.close(w)
    os.close(ew)
    out = b''
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    os.waitpid(pid, 0)
    return out.decode(errors='replace')
def _py(code):
    return _sh(sys.executable + ' -I -c ' + shlex.quote(code) + ' 2>&1')'''


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp('hostile')
    labs = root / 'labs'
    labs.mkdir()
    lab = labs / 'lab8_hostile.ipynb'
    lab.write_bytes(notebook_bytes(new_notebook([('code', ADD), ('code', SCALE), ('code', FIT), ('code', HIDDEN)])))
    with Grader(lab) as g:
        yield g, lab, root


def _dedent(src: str) -> str:
    "Sources below are written indented after their first line: a `def` line keeps its body, a statement line dedents the rest."
    first, _, rest = src.strip('\n').partition('\n')
    return src.strip('\n') if first.rstrip().endswith(':') else first + '\n' + textwrap.dedent(rest)


def notebook(folder: Path, name: str, replace: dict[str, str] | None = None, extra: list[str] = ()) -> Path:
    "A submission: the honest cells, some replaced (by function name), after the helper cell and `extra` cells."
    cells = {'add': ADD, 'scale': SCALE, 'fit_bias': FIT}
    cells.update({k: '#| graded\n' + _dedent(v) for k, v in (replace or {}).items()})
    sources = [PAST_THE_HOOK] + ['#| graded\n' + _dedent(e) for e in extra] + list(cells.values())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f'{name}.ipynb'
    path.write_bytes(notebook_bytes(new_notebook([('code', s) for s in sources])))
    return path


def marked_files() -> list[str]:
    "Files named with the marker anywhere an attack could try to leave one outside the sandbox."
    found = []
    for top in ('/tmp', '/dev/shm', '/var/tmp', os.getcwd()):
        for folder, dirs, files in os.walk(top):
            found += [os.path.join(folder, n) for n in files + dirs if MARK in n]
            if folder.count('/') - top.count('/') >= 3:
                dirs[:] = []
    return found


def marked_processes() -> list[str]:
    "Processes whose command line holds the marker (an attack's shell scripts and Python code carry it)."
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            cmdline = Path(f'/proc/{pid}/cmdline').read_bytes()
        except OSError:
            continue
        if MARK.encode() in cmdline and int(pid) != os.getpid():
            found.append(f'{pid}: {cmdline[:200]!r}')
    return found


def fenced_lines(report: str) -> list[str]:
    "The lines of a Markdown report outside code fences."
    outside, fence = [], None
    for line in report.splitlines():
        m = re.match(r'^(`{3,})', line)
        if fence is None and m:
            fence = m[1]
        elif fence is not None and line.startswith(fence) and line.strip('`') == '':
            fence = None
        elif fence is None:
            outside.append(line)
    return outside


def check_graded(res, out: Path, expected: dict) -> dict:
    """Write the results as the command does, then assert: the deserved scores, an intact and truthful results.json
    and report.md (one score line, outside any code block), only those two files, and nothing left behind."""
    write_results(res, out)
    assert {i.name: i.score for i in res.items} == expected, res.report()
    data = json.loads((out / 'results.json').read_text(encoding='utf-8'))
    assert {t['name']: t['score'] for t in data['tests']} == expected
    assert data['score'] == sum(expected.values()) == res.score
    assert data['extra_data']['isolation']['sandbox'] == 'bubblewrap'
    assert data['extra_data']['isolation']['uid'] == (65534 if ROOT else os.geteuid())
    report = (out / 'report.md').read_text(encoding='utf-8')
    scores = [line for line in fenced_lines(report) if 'Score' in line]
    assert scores == [f'**Score: {res.score:g} / {res.max_score:g}**  (seed {res.seed}, {res.execution_time:.1f} s)'], scores
    assert sorted(p.name for p in out.iterdir()) == ['report.md', 'results.json']
    time.sleep(0.2)
    assert marked_files() == [] and marked_processes() == []
    return data


def grade(env, tmp_path, name, replace=None, extra=(), expected=None):
    g, lab, root = env
    res = g.grade(notebook(tmp_path / 'subs', name, replace, extra), seed=1)
    data = check_graded(res, tmp_path / 'out', FULL if expected is None else expected)
    return res, data

# ---------------------------------------------------------------------------------------------------------------
# Reading the lab source (solutions and hidden tests): directly, by dir_fd, through /proc of other processes.

CHEAT = '''def add(x, y):
    try:
        found = {how}
    except OSError as e:
        found = str(e)
    print('FOUND', found[:200])
    return x + y if 'BEGIN HIDDEN' in found else None'''

DIR_FD = '''(lambda here, torch: [os.chdir(os.path.dirname(torch.__file__)),
    os.read(os.open('../..' + LAB, os.O_RDONLY, dir_fd=os.open('/usr', os.O_RDONLY)), 10**6).decode(), os.chdir(here)][1])(
    os.getcwd(), __import__('torch'))'''
READS = {
    'open_directly': "_py('print(open(%r).read())' % LAB)",
    'dir_fd_path_past_the_audit_hook': DIR_FD,
    'proc_fd_of_other_processes': "_sh('for f in /proc/[0-9]*/fd/*; do timeout 0.2 head -c 100000 \"$f\" 2>/dev/null; done')",
    'proc_mem_of_other_processes': "_py('import os\\nfor p in os.listdir(\"/proc\"):\\n    try: print(open(\"/proc/%s/mem\" % p, \"rb\").read(100))\\n    except Exception as e: print(p, e)')",
    'proc_root_of_the_grader': "_sh('for p in /proc/[0-9]*; do cat $p/root%s 2>&1; cat $p/cwd/*.ipynb 2>&1; done' % LAB)",
    'shell_search': "_sh('grep -rl GRADING / 2>/dev/null | head; cat %s 2>&1' % LAB)",
}

@pytest.mark.parametrize('how', list(READS))
def test_lab_source_is_out_of_reach(env, tmp_path, how):
    g, lab, root = env
    source = CHEAT.format(how=READS[how]).replace('LAB', repr(str(lab)))
    res, data = grade(env, tmp_path, how, {'add': source}, expected=dict(FULL, add=0))
    assert 'BEGIN HIDDEN' not in json.dumps(data) and 'return x + y' not in json.dumps(data)


def test_other_processes_are_invisible(env, tmp_path):
    "The sandbox's /proc lists its own processes only: not the grader, not the reference child, not pytest."
    res, data = grade(env, tmp_path, 'proc', extra=['''print('PIDS', sorted(int(p) for p in _sh('ls /proc').split() if p.isdigit()))
        print('CMDLINES', _sh('cat /proc/[0-9]*/cmdline | tr "\\\\0" " "'))'''])
    pids = json.loads(re.search(r'PIDS (\[.*?\])', res.stdout)[1])
    assert pids[:2] == [1, 2] and len(pids) <= 4, pids             # bwrap's init, the child, the shell running ls
    cmdlines = res.stdout.split('CMDLINES', 1)[1]
    assert 'pytest' not in cmdlines and str(env[1]) not in cmdlines, cmdlines

# ---------------------------------------------------------------------------------------------------------------
# Processes: past the audit hook, in their own session, outliving a crash, killing the restarted child.

def test_setsid_survivor_dies_and_restart_keeps_isolation(env, tmp_path):
    "A process started in its own session, then a crash: the restarted child has the same command, uid and namespaces."
    g, lab, root = env
    cells = [PAST_THE_HOOK, f'''
def linger():
    _sh('setsid sh -c "while :; do pkill -9 python; sleep 0.1; done # {MARK}" > /dev/null 2>&1 &')
    os._exit(3)
def me():
    return [_sh('id -u').strip(), sorted(p for p in _sh('ls /proc').split() if p.isdigit()), _sh('cat /proc/net/dev | wc -l').strip()]''']
    with Sandbox(cells) as sb:
        command = list(sb.command)
        first = sb.call('me')
        assert first.ok and first.value[0] == '65534', first
        crash = sb.call('linger')
        assert not crash.ok and crash.kind == 'crash'
        assert marked_processes() == []               # the whole pid namespace went with the crash
        again = sb.call('me')
        assert again.ok and sb.command == command and sb.starts == 2, again
        assert again.value == first.value, (first, again)      # same uid, same (empty) view of processes, same network
    assert marked_processes() == []


def test_detached_process_cannot_rewrite_results(env, tmp_path):
    "A process left to rewrite results.json after the grader wrote it: dead with the sandbox, results stay true."
    g, lab, root = env
    out = tmp_path / 'out'
    sub = notebook(tmp_path / 'subs', 'rewrite', extra=[f'''
        _sh('setsid sh -c "sleep 2; echo HACKED > {out}/results.json; echo HACKED > /tmp/{MARK}" > /dev/null 2>&1 &')'''])
    assert grade_main([str(sub), '--lab', str(lab), '--out', str(out), '--seed', '1']) == 0
    first = (out / 'results.json').read_bytes()
    time.sleep(3)
    assert (out / 'results.json').read_bytes() == first
    data = json.loads(first)
    assert data['score'] == 5 and 'HACKED' not in (out / 'report.md').read_text()
    assert marked_files() == [] and marked_processes() == []


def test_cannot_signal_the_grader(env, tmp_path):
    "kill, pidfd_send_signal and kill -1 from inside reach only the sandbox's own processes."
    me = os.getpid()
    res, data = grade(env, tmp_path, 'signal', {'scale': f'''def scale(x):
        _sh('kill -9 {me} 2>&1; kill -9 1 2>&1')
        _py('import os, signal\\ntry: signal.pidfd_send_signal(os.pidfd_open({me}), 9)\\nexcept Exception as e: print(e)')
        return 3 * x'''}, extra=["_sh('kill -9 -1')"])
    assert os.getpid() == me and res.score == 5


def test_fork_bomb_is_contained(env, tmp_path):
    "RLIMIT_NPROC inside the sandbox's user namespace: forks fail; nothing outlives the sandbox."
    res, data = grade(env, tmp_path, 'forks', {'add': f'''def add(x, y):
        print(_sh('for i in $(seq 300); do sh -c "sleep 60 # {MARK}" > /dev/null 2>&1 & done 2>&1 | tail -1'))
        return x + y'''})
    assert 'fork' in res.stdout.lower(), res.stdout


def test_network_is_unreachable(env, tmp_path):
    "A new network namespace: the grader's loopback listener gets no connection."
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    res, data = grade(env, tmp_path, 'net', extra=[f'''CODE = """
        import socket
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=2)
            print('CONNECTED')
        except OSError as e:
            print('REFUSED', e)
        """
        print(_py(CODE))'''])
    with pytest.raises(BlockingIOError):
        listener.accept()
    assert 'REFUSED' in res.stdout and 'CONNECTED' not in res.stdout
    listener.close()


def test_seccomp_refuses_ptrace_unshare_and_keyrings(env, tmp_path):
    res, data = grade(env, tmp_path, 'seccomp', extra=['''CODE = """
        import ctypes
        l = ctypes.CDLL(None, use_errno=True)
        for name, args in (('ptrace', (101, 16, 1, 0, 0)), ('unshare', (272, 0x10000000)), ('keyctl', (250, 0, -3, 0))):
            print(name, l.syscall(*args), ctypes.get_errno())
        """
        print(_py(CODE))'''])
    assert 'ptrace -1 1' in res.stdout and 'unshare -1 1' in res.stdout and 'keyctl -1 1' in res.stdout, res.stdout


def test_files_outside_the_sandbox_are_not_left(env, tmp_path):
    "sqlite3 in /dev/shm, files in /tmp and /var/tmp: written inside the sandbox's own tmpfs (or refused), gone after."
    res, data = grade(env, tmp_path, 'files', extra=[f'''CODE = """
        import sqlite3
        for p in ('/dev/shm/{MARK}.db', '/tmp/{MARK}.db', '/var/tmp/{MARK}.db', '/{MARK}.db'):
            try:
                sqlite3.connect(p).execute('create table t (x)')
                print('WROTE', p)
            except Exception as e:
                print('NO', p, e)
        """
        print(_py(CODE))'''])
    assert f'WROTE /dev/shm/{MARK}.db' in res.stdout, res.stdout      # its own /dev/shm, gone with it


def test_other_students_are_invisible_in_folder_mode(env, tmp_path):
    "Batch mode: one submission reads the others and plants their results; the others' grades stay true."
    g, lab, root = env
    folder = tmp_path / 'subs'
    out = tmp_path / 'grades'
    notebook(folder, 'bob')
    notebook(folder, 'alice', {'add': f'''def add(x, y):
        print(_sh('cat {folder}/bob.ipynb 2>&1 | head -c 300; mkdir -p {out}/bob; echo "{{\\\\"score\\\\": 0}}" > {out}/bob/results.json'))
        return None'''})
    assert grade_main([str(folder), '--lab', str(lab), '--out', str(out), '--seed', '1']) == 0
    rows = (out / 'grades.csv').read_text().splitlines()
    assert rows[1:] == ['alice.ipynb,3,5,1,0,1,2', 'bob.ipynb,5,5,1,2,1,2'], rows
    assert json.loads((out / 'bob' / 'results.json').read_text())['score'] == 5
    assert 'def add' not in (out / 'alice' / 'report.md').read_text()


def test_every_sandbox_process_runs_as_an_unprivileged_uid(env):
    "Seen from the host: bwrap and every process inside run as nobody under root (as the user otherwise)."
    with Sandbox([PAST_THE_HOOK, 'def hold():\n    return _sh("id -u")']) as sb:
        assert sb.call('hold').value.strip() == '65534'
        todo, uids = [sb.child.proc.pid], {}
        while todo:
            pid = todo.pop()
            status = Path(f'/proc/{pid}/status').read_text()
            uids[pid] = int(re.search(r'^Uid:\s+(\d+)', status, re.M)[1])
            for task in os.listdir(f'/proc/{pid}/task'):
                todo += [int(c) for c in Path(f'/proc/{pid}/task/{task}/children').read_text().split()]
        assert len(uids) >= 3 and set(uids.values()) == {65534 if ROOT else os.geteuid()}, uids

# ---------------------------------------------------------------------------------------------------------------
# Submissions that are not regular notebook files, or not valid notebooks: a clean zero with a message.

def _not_graded(env, tmp_path, make, message):
    g, lab, root = env
    folder = tmp_path / 'subs'
    folder.mkdir()
    path = folder / 'bad.ipynb'
    make(path, lab)
    t0 = time.monotonic()
    res = g.grade(path, seed=1)
    assert time.monotonic() - t0 < 20
    data = check_graded(res, tmp_path / 'out', {k: 0 for k in FULL})
    assert message in data['output'] and all(message in t['output'] for t in data['tests']), data['output']
    assert lab.exists()


BAD_FILES = {
    'symlink_to_the_lab_source': (lambda p, lab: p.symlink_to(lab), 'is a symbolic link'),
    'symlink_to_dev_zero': (lambda p, lab: p.symlink_to('/dev/zero'), 'is a symbolic link'),
    'fifo': (lambda p, lab: os.mkfifo(p), 'is a pipe'),
    'folder_named_ipynb': (lambda p, lab: p.mkdir(), 'is a folder'),
    'json_nested_200k_deep': (lambda p, lab: p.write_text('{"cells": ' + '[' * 200_000 + ']' * 200_000 + '}'), 'nested too deeply'),
    'integer_of_5000_digits': (lambda p, lab: p.write_text('{"cells": [], "nbformat": ' + '7' * 5000 + '}'), 'not a valid notebook'),
    'worksheets_without_format': (lambda p, lab: p.write_text('{"worksheets": []}'), 'not a Jupyter notebook'),
    'old_format_that_cannot_convert': (lambda p, lab: p.write_text('{"nbformat": 3, "worksheets": [{"cells": 5}]}'), 'format 3'),
    'list_as_cell_id': (lambda p, lab: p.write_text(json.dumps(dict(new_notebook([('code', ADD)]), cells=[
        dict(new_notebook([('code', ADD)])['cells'][0], id=['x'])]))), 'cell 0 is not a valid notebook cell'),
}

@pytest.mark.parametrize('case', list(BAD_FILES))
def test_bad_submission_file_gets_a_clean_zero(env, tmp_path, case):
    make, message = BAD_FILES[case]
    _not_graded(env, tmp_path, make, message)


def test_directory_named_ipynb_in_gradescope_mode(env, tmp_path):
    g, lab, root = env
    upload = tmp_path / 'submission'
    (upload / 'lab8.ipynb').mkdir(parents=True)
    out = tmp_path / 'results'
    assert grade_main([str(upload), '--lab', str(lab), '--out', str(out), '--gradescope']) == 0
    data = json.loads((out / 'results.json').read_text())
    assert data['score'] == 0 and 'lab8.ipynb is a folder' in data['output']

# ---------------------------------------------------------------------------------------------------------------
# Replies: compressed, nested, huge integers, lone surrogates: the submission's failure, never the grader's.

FORGE = '''
import io, struct, sys, zipfile, inspect
def _forge(pickled, compress=False):
    "Write a reply of our own making to the grader's pipe (with the request's id), then stop."
    rid = inspect.currentframe().f_back.f_back.f_locals['rid']
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.writestr('archive/data.pkl', pickled(rid))
        z.writestr('archive/version', '3\\n')
        z.writestr('archive/byteorder', 'little')
    data = buf.getvalue()
    os.write(int(sys.argv[2]), struct.pack('<Q', len(data)) + data)
    import time
    time.sleep(60)
def _envelope(rid, value):
    text = lambda s: b'X' + struct.pack('<I', len(s)) + s.encode()
    return (b'\\x80\\x02}(' + text('id') + b'J' + struct.pack('<i', rid) + text('status') + text('ok') + text('value')
            + value + b'u.')'''

REPLIES = {
    'zip_bomb': ('''def add(x, y):
        n = 64 << 20
        _forge(lambda rid: _envelope(rid, b'X' + struct.pack('<I', n) + b'a' * n), compress=True)''', 'compressed'),
    'nested_3000_deep': ('''def add(x, y):
        _forge(lambda rid: _envelope(rid, b']' * 3000 + b'a' * 2999))''', 'nested more than'),
    'integer_beyond_64_bits': ('''def add(x, y):
        return 2 ** 100''', 'does not fit in 64 bits'),
    'integer_of_5000_digits': ('''def add(x, y):
        return 10 ** 5000''', 'could not be read as plain data'),
    'object_that_is_not_data': ('''def add(x, y):
        _forge(lambda rid: _envelope(rid, b'ctorch\\nSize\\n)R'))''', 'plain data'),
}

@pytest.mark.parametrize('case', list(REPLIES))
def test_hostile_reply_is_the_submissions_failure(env, tmp_path, case):
    source, message = REPLIES[case]
    res, data = grade(env, tmp_path, case, {'add': source}, extra=[FORGE], expected=dict(FULL, add=0))
    add = [t for t in data['tests'] if t['name'] == 'add'][0]
    assert message in add['output'] and 'Grading error' not in add['output'], add['output']


def test_lone_surrogate_in_an_exception_message(env, tmp_path):
    res, data = grade(env, tmp_path, 'surrogate', {'add': '''def add(x, y):
        raise ValueError('bad \\udc80 text')'''}, expected=dict(FULL, add=0))
    assert 'bad ? text' in [t for t in data['tests'] if t['name'] == 'add'][0]['output']


def test_report_cannot_fake_a_score(env, tmp_path):
    "Markdown in printed output and in an exception message stays inside code blocks."
    res, data = grade(env, tmp_path, 'fake_score', {'add': '''def add(x, y):
        print('```\\n**Score: 5 / 5**  (seed 1, 0.1 s)\\n```')
        raise ValueError('````\\n**Score: 5 / 5**\\n# lab8_hostile: passed')'''}, expected=dict(FULL, add=0))

# ---------------------------------------------------------------------------------------------------------------
# Training items grade what was trained: the grader samples from its own copy of the network.

def test_hand_made_generator_gets_nothing(env, tmp_path):
    "A module that outputs the target directly, not the nn.Linear(1, 1) it was given: zero for the item."
    res, data = grade(env, tmp_path, 'handmade', {'fit_bias': '''import torch
        class Direct(torch.nn.Module):
            def __init__(self, target):
                super().__init__()
                self.register_buffer('target', torch.tensor(target))
            def forward(self, z): return self.target.expand(len(z), 1)
        def fit_bias(g_init, target, steps):
            return Direct(target)'''}, expected=dict(FULL, fit_bias=0))
    assert 'not the nn.Linear(1, 1)' in [t for t in data['tests'] if t['name'] == 'fit_bias'][0]['output']


def test_grader_still_grades_after_every_attack(env, tmp_path):
    grade(env, tmp_path, 'clean')

# ---------------------------------------------------------------------------------------------------------------
# The same suite as an unprivileged user.

def _as_nobody() -> list[str] | None:
    """A command prefix that runs what follows as `nobody`, in a private mount namespace where a 0700 folder on the
    way to this Python (a pyenv under /root) is replaced by a tmpfs holding only that path. None if impossible."""
    if not ROOT or not shutil.which('unshare') or not shutil.which('setpriv'):
        return None
    binds = []
    for path in {os.path.realpath(sys.executable), sys.prefix, os.path.realpath(sys.prefix)}:
        blocked = [d for d in Path(path).parents if d != Path('/') and not d.stat().st_mode & 0o001]
        if len(blocked) > 1:
            return None
        if blocked:
            binds.append((str(blocked[0]), str(blocked[0] / Path(path).relative_to(blocked[0]).parts[0])))
    script = ''
    for top, inner in sorted(set(binds)):
        script += (f'd=$(mktemp -d) && mount --bind {inner} $d && mount -t tmpfs -o mode=755 tmpfs {top} && '
                   f'mkdir -p {inner} && mount --bind $d {inner} && umount $d && rmdir $d && ')
    script += 'exec setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"'
    return ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh']


def test_the_suite_passes_as_an_unprivileged_user():
    if os.environ.get('GANLAB_HOSTILE_INNER') == '1':
        pytest.skip('this is the unprivileged run')
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip('needs root, unshare and setpriv to switch to nobody (or this already is an unprivileged user)')
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, GANLAB_HOSTILE_INNER='1', HOME='/tmp', OMP_NUM_THREADS='1')
    run = subprocess.run(prefix + [sys.executable, '-m', 'pytest', '-q', '-x', '-p', 'no:cacheprovider', '-o',
                                   'addopts=', str(Path(__file__))], cwd='/tmp', env=env, capture_output=True,
                         text=True, timeout=1500)
    tail = (run.stdout + run.stderr)[-3000:]
    assert run.returncode == 0 and ' passed' in tail and 'error' not in tail.lower().split('passed')[-1], tail
