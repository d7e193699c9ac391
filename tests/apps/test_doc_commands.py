"""The commands the README and the docs show: one form (``.venv/bin/python ...``, run from the
repository's root), scripts, recipes and sweeps that exist, one checkpoint-path form (a run
directory), and no quoted figure that nothing keeps current (the test count)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted({ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "examples").rglob("README.md"),
                *(ROOT / "packages").glob("*/README.md"), *(ROOT / "apps").glob("*.py"),
                *(ROOT / "benchmarks").glob("*.py"), *(ROOT / "examples").rglob("*.py"),
                *(ROOT / "recipes").rglob("*.yaml")})
SCRIPT = re.compile(r"(?<![\w/.-])((?:apps|benchmarks|examples)/[\w/.-]+\.py)")
BARE = re.compile(r"(?<![\w/.-])python3? (?:-W \w+ |-m pytest|-u )?(?:apps|benchmarks|examples|-m pytest)")


def _lines(examples_of_errors=True):
    """(page:line, text) of every line; without the commands shown failing (an ``error:`` line next)."""
    for page in PAGES:
        lines = page.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if examples_of_errors or not (number < len(lines) and lines[number].startswith("error:")):
                yield f"{page.relative_to(ROOT)}:{number}", line


def test_every_command_uses_the_venv_python():
    bare = [f"{where}: {line.strip()}" for where, line in _lines() if BARE.search(line)]
    assert not bare, "use `.venv/bin/python ...` (it exists right after `make`):\n" + "\n".join(bare)


TOOL = re.compile(r"^\s*(?:[A-Z_]+=\S+ )*(?:accelerate|ray|pytest|ruff|pip) ")  # a command line run bare


def test_every_tool_command_uses_the_venv():
    bare = [f"{where}: {line.strip()}" for where, line in _lines() if TOOL.search(line)]
    assert not bare, "use `.venv/bin/accelerate`, `.venv/bin/ray`, ... (they exist right after `make`):\n" + "\n".join(bare)


def test_every_script_named_exists():
    missing = [f"{where}: {script}" for where, line in _lines() for script in SCRIPT.findall(line)
               if not (ROOT / script).is_file()]
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize(("key", "folder"), [("recipe", "recipes"), ("sweep", "recipes/sweeps")])
def test_every_named_recipe_and_sweep_exists(key, folder):
    pattern = re.compile(rf"(?<![\w.]){key}=([A-Za-z_][\w]*)\b(?![/.<])")
    names = {(where, name) for where, line in _lines(examples_of_errors=False) if "apps/" in line
             for name in pattern.findall(line)}
    assert names, f"no {key}=NAME found: the pattern is wrong"
    missing = [f"{where}: {key}={name}" for where, name in sorted(names)
               if not (ROOT / folder / f"{name}.yaml").is_file() and name not in ("NAME", "PATH")]
    assert not missing, "\n".join(missing)


def test_two_checkpoint_path_forms_the_run_directory_and_its_best():
    other = [f"{where}: {line.strip()}" for where, line in _lines()
             if re.search(r"checkpoint=\S*/checkpoints/(?!best\b)", line)]
    assert not other, ("write checkpoint=RUN_DIR (its latest checkpoint) or checkpoint=RUN_DIR/checkpoints/best "
                       "(the monitored best):\n" + "\n".join(other))


def test_the_readme_quotes_no_test_count():
    readme = (ROOT / "README.md").read_text()
    assert not re.search(r"\b\d[\d,]* tests\b", readme), "a quoted test count goes stale: say how to get it"
    assert "1,066 s" in readme and "EDDIES_DATA=<empty folder> .venv/bin/python apps/train.py recipe=frmdn_mnist" in readme


def _shown_errors():
    """(page:line, command, error line) of every ``$ .venv/bin/python ...`` a page shows failing."""
    for page in PAGES:
        lines = page.read_text().splitlines()
        for number, (line, following) in enumerate(zip(lines, lines[1:], strict=False), 1):
            if line.startswith("$ .venv/bin/python ") and following.startswith("error:"):
                yield f"{page.relative_to(ROOT)}:{number}", line.removeprefix("$ "), following


SHOWN_ERRORS = list(_shown_errors())


def test_pages_show_failing_commands():
    assert SHOWN_ERRORS, "no '$ .venv/bin/python ...' followed by an 'error:' line: the pattern is wrong"


@pytest.mark.parametrize(("where", "command", "error"), SHOWN_ERRORS, ids=[w for w, _, _ in SHOWN_ERRORS])
def test_a_failing_command_shown_prints_the_error_shown(where, command, error):
    """The ``error:`` line a page shows is the one the command prints today (``<repo>`` = the
    repository's root); such errors happen before any work starts, so each takes seconds."""
    argv = shlex.split(command)
    proc = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, f"{where}: {proc.stderr}"
    assert proc.stderr.splitlines()[0] == error.replace("<repo>", str(ROOT)), where
