"""Lab 9 (latent space): the reference solution scores full marks, the student version zero with a clear message on
every item, and each seeded bug (a one-line change of a graded cell) loses points on its own item only."""
import copy, json, os
from pathlib import Path
from ganlab.grading import Grader
from ganlab.sandbox import sandbox_problem

# As in tests/test_labs.py: where bubblewrap cannot run, grade in the explicit unsafe mode (CI requires the sandbox).
UNSAFE = sandbox_problem() is not None and os.environ.get('GANLAB_REQUIRE_SANDBOX') != '1'

LAB = Path(__file__).resolve().parents[1] / 'nbs' / 'labs' / 'lab9_latent.ipynb'
STUDENT = LAB.parent / 'student' / LAB.name

# (bug, text in a graded cell, its replacement, the items that must lose points)
BUGS = [
    ('slerp on normalised endpoints',
     'formula = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / safe',
     'formula = (torch.sin((1 - t) * omega) * z0 / z0.norm(dim=1, keepdim=True)'
     ' + torch.sin(t * omega) * z1 / z1.norm(dim=1, keepdim=True)) / safe',
     ['slerp']),
    ('slerp without the fallback', 'return torch.where(degenerate, (1 - t) * z0 + t * z1, formula)',
     'return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / sin', ['slerp_parallel']),
    ('grid upside down', 'u = torch.linspace(0, 1, rows, dtype=corners.dtype)[:, None, None]',
     'u = torch.linspace(0, 1, rows, dtype=corners.dtype)[:, None, None].flip(0)', ['interpolation_grid']),
    ('edit descends', 'z = current.detach() + lr * grad', 'z = current.detach() - lr * grad', ['guided_edit']),
    ('edit with the mean over rows', '(grad,) = torch.autograd.grad(log_p.sum(), current)',
     '(grad,) = torch.autograd.grad(log_p.mean(), current)', ['guided_edit']),
    ('edit on the probability', 'log_p = F.log_softmax(classifier(G(current)), dim=1)[torch.arange(len(current)), target]',
     'log_p = F.softmax(classifier(G(current)), dim=1)[torch.arange(len(current)), target]', ['guided_edit']),
    ('side effect without renormalising', 'q_before = p_before * mask / (p_before * mask).sum(dim=1, keepdim=True)',
     'q_before = p_before * mask', ['edit_side_effects']),
]


def mutate(nb: dict, old: str, new: str) -> dict:
    "A copy of `nb` with `old` replaced by `new` in exactly one graded cell."
    bad, hits = copy.deepcopy(nb), 0
    for c in bad['cells']:
        src = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'code' and src.startswith('#| graded') and old in src:
            c['source'], hits = src.replace(old, new), hits + 1
    assert hits == 1, f'{old!r} found in {hits} graded cells'
    return bad


def test_reference_full_marks_student_zero_and_bugs_lose_points_on_their_items():
    nb = json.loads(LAB.read_text())
    with Grader(LAB, unsafe=UNSAFE) as grader:
        ref = grader.grade(nb, seed=7)
        assert ref.score == ref.max_score == 10, ref.report()
        student = grader.grade(STUDENT, seed=7)
        assert student.score == 0 and all('not implemented' in i.output for i in student.items), student.report()
        for name, old, new, expected in BUGS:
            r = grader.grade(mutate(nb, old, new), seed=7)
            lost = sorted(i.name for i in r.items if i.score < i.max_score)
            assert lost == expected, f'bug {name!r} lost points on {lost}, expected {expected}\n{r.report()}'


def test_student_version_is_current():
    from ganlab.grading import assign
    report = assign([LAB], check_only=True)
    assert report['stale'] == [] and 'lab9_latent.ipynb' not in report['missing'], report
