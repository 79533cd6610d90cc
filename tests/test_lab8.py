"""Lab 8 (StyleGAN's pieces): the reference solution scores full marks, the student version zero with a clear
message on every item, and each seeded bug (a one-line change of a graded cell) loses points on its items only."""
import copy, json
from pathlib import Path
import pytest
from ganlab.grading import Grader

LAB = Path(__file__).resolve().parents[1] / 'nbs' / 'labs' / 'lab8_stylegan.ipynb'
STUDENT = LAB.parent / 'student' / LAB.name

# (bug, text in a graded cell, its replacement, the items that must lose points)
BUGS = [
    ('unbiased variance', 'var = x.var(dim=(2, 3), unbiased=False, keepdim=True)',
     'var = x.var(dim=(2, 3), keepdim=True)', ['adaptive_instance_norm']),
    ('no eps', '/ torch.sqrt(var + eps)', '/ torch.sqrt(var)', ['adaptive_instance_norm_constant']),
    ('one noise weight for all channels', 'return x + weight[None, :, None, None] * noise',
     'return x + weight.mean() * noise', ['inject_noise']),
    ('no pixel norm', 'h = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)', 'h = z', ['mapping_network']),
    ('fan-out for fan-in', 'c = math.sqrt(2 / W.shape[1])', 'c = math.sqrt(2 / W.shape[0])', ['mapping_network']),
    ('truncation toward 0', 'return w_avg + psi * (w - w_avg)', 'return psi * w', ['truncate']),
    ('alpha swapped', "return (1 - alpha) * F.interpolate(old, scale_factor=2, mode='nearest') + alpha * new",
     "return alpha * F.interpolate(old, scale_factor=2, mode='nearest') + (1 - alpha) * new", ['fade_in']),
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
    with Grader(LAB) as grader:
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
    assert report['stale'] == [] and 'lab8_stylegan.ipynb' not in report['missing'], report
