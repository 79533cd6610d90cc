"""Committed outputs: the stale-output check (ganlab.outputs, nbs/73_outputs.ipynb) that CI runs."""
import json, shutil
from pathlib import Path

import nbformat
import pytest

import ganlab
from ganlab.outputs import course_notebooks, execute, main, stale_reasons, tidy_outputs, LIVE_WIDGET_NOTE

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(ganlab.__file__).resolve().parent


def test_every_course_notebook_is_committed_with_current_outputs():
    "What CI's `ganlab-outputs check` asserts, with the reasons in the failure message."
    stale = {str(p.relative_to(ROOT)): r for p in course_notebooks(ROOT / 'nbs') if (r := stale_reasons(p))}
    assert not stale, 'run `ganlab-outputs run` on these and commit them:\n' + json.dumps(stale, indent=1)


def test_student_versions_are_not_course_notebooks():
    found = course_notebooks(ROOT / 'nbs')
    assert not any('student' in p.parts for p in found)
    assert ROOT / 'nbs' / 'index.ipynb' in found and ROOT / 'nbs' / 'labs' / 'lab1_game.ipynb' in found


@pytest.fixture
def chapter(tmp_path):
    "A scratch copy of a committed chapter and of the package it was executed with."
    nb = tmp_path / 'nbs' / '12_wasserstein.ipynb'
    nb.parent.mkdir()
    shutil.copy(ROOT / 'nbs' / '12_wasserstein.ipynb', nb)
    package = tmp_path / 'ganlab'
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns('__pycache__'))
    return nb, package


def test_a_deliberately_edited_cell_makes_the_chapter_stale(chapter):
    nb_path, package = chapter
    assert stale_reasons(nb_path, package) == []
    nb = nbformat.read(nb_path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == 'code']
    code[5].source += '\nassert True  # edited after the notebook ran'
    nbformat.write(nb, nb_path)
    assert stale_reasons(nb_path, package) == ['code cell 6 changed since it ran']
    assert main(['check', str(nb_path)]) == 1


def test_a_changed_module_makes_the_chapter_stale_and_a_renamed_chapter_does_not(chapter):
    nb_path, package = chapter
    used = nbformat.read(nb_path, as_version=4).metadata['ganlab']['outputs']['modules']
    assert 'ganlab.divergences' in used                      # chapter 12 imports chapter 11's module
    module = package / 'divergences.py'
    text = module.read_text()
    assert '../nbs/11_divergences.ipynb' in text
    module.write_text(text.replace('../nbs/11_divergences.ipynb', '../nbs/11_renamed.ipynb'))
    assert stale_reasons(nb_path, package) == []
    module.write_text(text + '\nEPSILON = 1e-12\n')
    assert stale_reasons(nb_path, package) == ['ganlab.divergences changed since it ran']


def test_a_notebook_never_run_through_the_tool_is_stale(tmp_path):
    p = tmp_path / 'x.ipynb'
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1 + 1')]), p)
    assert stale_reasons(p) == ['never executed with `ganlab-outputs run` (no fingerprint in its metadata)']


def test_execute_records_the_modules_used_and_removes_progress_bars(tmp_path):
    p = tmp_path / 'small.ipynb'
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('from ganlab.core import check\nfrom tqdm.auto import tqdm\n'
                                  'for _ in tqdm(range(3)): pass\nprint("done")')])
    nbformat.write(nb, p)
    execute(p, timeout=300)
    done = nbformat.read(p, as_version=4)
    outputs = done.cells[0].outputs
    assert [o.get('text') for o in outputs] == ['done\n']
    assert 'ganlab.core' in done.metadata['ganlab']['outputs']['modules']
    assert stale_reasons(p, forbidden=[]) == []


def test_notest_cells_are_not_run_and_keep_their_outputs(tmp_path):
    "A `#| notest` cell (minutes of retraining) is skipped, as nbdev-test skips it; its old outputs stay."
    p = tmp_path / 'slow.ipynb'
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('#| notest\nraise SystemExit("ran")'),
                                         nbformat.v4.new_code_cell('print("fast")')])
    nb.cells[0].outputs = [nbformat.v4.new_output('stream', name='stdout', text='from the last run by hand\n')]
    nbformat.write(nb, p)
    execute(p, timeout=300)
    done = nbformat.read(p, as_version=4)
    assert [c.outputs[0].text for c in done.cells] == ['from the last run by hand\n', 'fast\n']
    assert 'tags' not in done.cells[0].metadata


def test_a_live_widget_becomes_a_note():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('interact(f)')])
    nb.cells[0].outputs = [nbformat.v4.new_output(
        'display_data', data={'application/vnd.jupyter.widget-view+json': {'model_id': 'm'},
                              'text/plain': 'interactive(children=(FloatSlider(value=1.5),))'})]
    tidy_outputs(nb)
    assert nb.cells[0].outputs[0].data == {'text/plain': LIVE_WIDGET_NOTE}


def test_bad_arguments_give_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(['check', str(tmp_path / 'missing.ipynb')])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count('\n') == 0 and err.startswith('ganlab-outputs: notebooks: expected existing .ipynb files')
    with pytest.raises(SystemExit) as e:
        main(['run', '--jobs', '0'])
    assert e.value.code == 2
