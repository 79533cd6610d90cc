"The README, the course home page and the package stay consistent with what exists."
import importlib, json, re, subprocess, tomllib
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb') if p.name != 'index.ipynb')

def index_text(): return '\n'.join(''.join(c['source']) for c in json.loads((ROOT/'nbs'/'index.ipynb').read_text())['cells'])

@pytest.mark.parametrize('chapter', CHAPTERS)
def test_every_chapter_is_on_the_maps(chapter):
    assert f'(nbs/{chapter})' in (ROOT/'README.md').read_text(), f'README.md does not link nbs/{chapter}'
    assert f'({chapter})' in index_text(), f'nbs/index.ipynb does not link {chapter}'

def test_maps_link_only_existing_chapters():
    linked = set(re.findall(r'\(nbs/([\w.-]+\.ipynb)\)', (ROOT/'README.md').read_text()))
    assert linked <= set(CHAPTERS), linked - set(CHAPTERS)
    assert set(re.findall(r'\]\(([\w.-]+\.ipynb)\)', index_text())) <= set(CHAPTERS)

def test_every_script_entry_point_resolves():
    scripts = tomllib.loads((ROOT/'pyproject.toml').read_text())['project']['scripts']
    for name, target in scripts.items():
        module, func = target.split(':')
        assert callable(getattr(importlib.import_module(module), func)), name

def test_ci_runs_the_readme_test_command():
    awk = "/<!-- test-command -->/{f=1; next} f && /^```/{if (s) exit; s=1; next} f && s {print; exit}"
    cmd = subprocess.run(['awk', awk, str(ROOT/'README.md')], capture_output=True, text=True, check=True).stdout.strip()
    assert 'pytest' in cmd and 'nbdev-test' in cmd
    assert awk in (ROOT/'.ci'/'run').read_text()

LABS = sorted(p.name for p in (ROOT/'nbs'/'labs').glob('lab*.ipynb'))

def test_every_lab_and_its_student_version_is_on_the_maps():
    assert len(LABS) >= 6, LABS                          # the glob found the labs (six, and the new ones)
    readme, index = (ROOT/'README.md').read_text(), index_text()
    for lab in LABS:
        assert (ROOT/'nbs'/'labs'/'student'/lab).is_file(), f'no student version of {lab}: run ganlab-assign'
        for link in (f'labs/{lab}', f'labs/student/{lab}'):
            assert f'(nbs/{link})' in readme, f'README.md does not link nbs/{link}'
            assert f'({link})' in index, f'nbs/index.ipynb does not link {link}'
    linked = set(re.findall(r'\(nbs/(labs/[\w./-]+\.ipynb)\)', readme)) | set(re.findall(r'\]\((labs/[\w./-]+\.ipynb)\)', index))
    assert all((ROOT/'nbs'/p).is_file() for p in linked), [p for p in linked if not (ROOT/'nbs'/p).is_file()]
