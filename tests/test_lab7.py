"""Lab 7 (image-to-image translation): the reference solution scores full marks, the student version scores zero
with a clear message on every item, and each seeded bug (a one-line change of a graded cell) loses points on the
items it breaks and only there."""
import copy
import json
from pathlib import Path
import pytest
from ganlab.grading import Grader

LAB = Path(__file__).resolve().parents[1] / 'nbs' / 'labs' / 'lab7_translation.ipynb'
STUDENT = LAB.parent / 'student' / LAB.name

# (bug, text in a graded cell, its replacement, the items that must lose points)
BUGS = [
    ('skip second', 'return torch.cat([h, up(inner(down(h)))], dim=1)',
     'return torch.cat([up(inner(down(h))), h], dim=1)', ['unet_skip']),
    ('receptive field forwards', 'for k, s in reversed(layers):', 'for k, s in layers:', ['receptive_field']),
    ('log of sigmoid', 'return F.softplus(-fake_logits).mean() + lam * (fake - target).abs().mean()',
     'return -torch.log(torch.sigmoid(fake_logits)).mean() + lam * (fake - target).abs().mean()',
     ['pix2pix_generator_loss_stable']),
    ('L1 summed', 'return F.softplus(-fake_logits).mean() + lam * (fake - target).abs().mean()',
     'return F.softplus(-fake_logits).mean() + lam * (fake - target).abs().sum()',
     ['pix2pix_generator_loss', 'pix2pix_generator_loss_stable']),
    ('squared cycle error', 'return (x_cycled - x).abs().mean() + (y_cycled - y).abs().mean()',
     'return (x_cycled - x).pow(2).mean() + (y_cycled - y).pow(2).mean()', ['cycle_consistency_loss']),
    ('identity on one side', 'return (G_of_y - y).abs().mean() + (F_of_x - x).abs().mean()',
     'return (G_of_y - y).abs().mean()', ['identity_mapping_loss']),
    ('stored image kept', '            pool[i] = image.clone()\n', '', ['buffer_query']),
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
        assert ref.score == ref.max_score == 13, ref.report()
        student = grader.grade(STUDENT, seed=7)
        assert student.score == 0 and all('not implemented' in i.output for i in student.items), student.report()
        for name, old, new, expected in BUGS:
            r = grader.grade(mutate(nb, old, new), seed=7)
            lost = sorted(i.name for i in r.items if i.score < i.max_score)
            assert lost == sorted(expected), f'bug {name!r} lost points on {lost}, expected {expected}\n{r.report()}'


def test_student_version_is_current_and_has_no_solutions():
    text = STUDENT.read_text()
    assert 'BEGIN SOLUTION' not in text and 'HIDDEN TESTS' not in text
    assert text.count('raise NotImplementedError') == 6
