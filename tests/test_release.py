"""The student release (scripts/make_student_release.py): no worked solution survives, the notebooks
still run, the exercises are left as tasks, and the checks still work.

Cost: building the release takes a few seconds. Executing released notebooks is what costs: the
whole series takes about 2 minutes on a quiet 2-core machine, and nbval already executes every
source notebook in the same test run. So one test executes a representative subset
(EXECUTE: 00, 03 and 06, about 20 s: the welcome check, a maths exercise, and the widget notebook),
and a cheap structural test covers every notebook with what could break the rest: a later cell
that uses a name only a removed solution cell defined, an exercise cell that no longer raises,
outputs that changed. `VAELIB_RELEASE_EXECUTE=all pytest tests/test_release.py` executes every
released notebook (run it before publishing a release).
"""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
import make_student_release as release_script  # noqa: E402  (scripts/ is on pytest's pythonpath)
from repo import notebooks  # noqa: E402

SOURCES = notebooks()
EXECUTE = ["00_welcome.ipynb", "03_reparameterization.ipynb", "06_latent_explorer.ipynb"]
if os.environ.get("VAELIB_RELEASE_EXECUTE") == "all":
    EXECUTE = [p.name for p in SOURCES]
BRANCH = "students"
NOT_DONE = "Not done yet"  # what every check prints for an answer that still raises NotImplementedError


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


def code_lines(source):
    return [line.strip() for line in source.splitlines()]


def squash(text):
    """``text`` without whitespace: a reformatted copy of a line is still found."""
    return re.sub(r"\s+", "", text)


def distinctive_lines(solution, shown):
    """Lines of a solution cell that give something away: not blank, not a comment, not an import, not the
    function's signature or docstring, not a call of the check, and not found in ``shown`` (the text of
    every cell of the series that is not a solution, without whitespace)."""
    lines = []
    in_docstring = False
    for line in code_lines(solution.source):
        quotes = line.count('"""') + line.count("'''")
        if in_docstring or quotes:
            in_docstring = in_docstring != (quotes % 2 == 1)
            continue
        if not line or line.startswith(("#", "def ", "import ", "from ", "assert vaelib.exercises", "passed =")):
            continue
        code = re.sub(r"\s+#.*$", "", line)  # a trailing comment does not make a line distinctive
        if len(code) < 8 or squash(code) in shown:
            continue
        lines.append(code)
    return lines


SHOWN = squash("\n".join(cell.source for path in SOURCES for cell in nbformat.read(path, as_version=4).cells
                          if "solution" not in tags(cell)))  # what the series shows outside its solutions


def notebook_text(nb):
    """Every piece of text a reader can get at: sources, outputs (text and data), attachments."""
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for output in cell.get("outputs", []):
            parts.append(output.get("text", "") if isinstance(output.get("text", ""), str) else "".join(output["text"]))
            parts.append(json.dumps(output.get("data", {}), ensure_ascii=False))
            parts.extend(output.get("traceback", []))
        parts.append(json.dumps(cell.get("attachments", {}), ensure_ascii=False))
    parts.append(json.dumps(nb.metadata, ensure_ascii=False))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "student-release"
    release_script.make_release(out, branch=BRANCH, zip_it=True, quiet=True)
    return out


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    out = tmp_path_factory.mktemp("handout") / "student-release"
    release_script.make_release(out, quiet=True)
    return out


def released(release, source):
    return nbformat.read(release / "notebooks" / source.name, as_version=4)


def test_every_notebook_released_valid_and_the_lecturer_files_left_out(release):
    assert sorted(p.name for p in (release / "notebooks").glob("*.ipynb")) == [p.name for p in SOURCES]
    for source in SOURCES:
        nbformat.validate(released(release, source))
    for name in ("pyproject.toml", "requirements.txt", "environment.yml", "postBuild", "vaelib/exercises.py",
                 "vaelib/assets/mnist_subset.npz"):
        assert (release / name).is_file(), name
    for name in ("answers", "LECTURERS.md", "tests", "scripts", "benchmarks"):
        assert not (release / name).exists(), name
    assert release.with_suffix(".zip").is_file()


@pytest.fixture(scope="module")
def release_texts(release):
    """{path: text without whitespace} of every file of the release a solution could hide in, each notebook as
    its cells' text (read and squashed once for all the notebooks' searches)."""
    searched = {p: p.read_text() for p in release.rglob("*") if p.is_file() and p.suffix in (".md", ".py", ".txt", ".yml", ".toml")
                and "vaelib" not in p.relative_to(release).parts}  # vaelib holds the references the checks compare with
    searched.update({p: notebook_text(nbformat.read(p, as_version=4)) for p in (release / "notebooks").glob("*.ipynb")})
    return {p: squash(text) for p, text in searched.items()}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name[:2])
def test_no_solution_survives(release, release_texts, source):
    nb = nbformat.read(source, as_version=4)
    solutions = [c for c in nb.cells if "solution" in tags(c)]
    assert solutions, f"{source.name} has no cell tagged 'solution'"
    original = squash(notebook_text(nb))
    checked = 0
    for cell in solutions:
        if "def " not in cell.source and cell.cell_type == "code":
            continue
        lines = distinctive_lines(cell, SHOWN)
        if cell.cell_type == "code":
            assert lines, f"a solution cell of {source.name} has no line of its own to search for:\n{cell.source}"
        for line in lines:
            needle = squash(line)
            assert needle in original  # the search finds it where it was
            found = [str(p.relative_to(release)) for p, text in release_texts.items() if needle in text]
            assert not found, f"solution line {line!r} of {source.name} survives in {found}"
            checked += 1
    assert checked


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name[:2])
def test_exercises_left_as_tasks_everything_else_as_stored(release, handout, source):
    nb = nbformat.read(source, as_version=4)
    out = released(release, source)
    kept = [c for c in nb.cells if "solution" not in tags(c)]
    assert [c.get("id") for c in out.cells] == [c.get("id") for c in kept]
    assert not any("solution" in tags(c) for c in out.cells)
    exercises = 0
    for before, after in zip(kept, out.cells):
        if "exercise" in tags(before) and before.cell_type == "code":
            exercises += 1
            assert "raise NotImplementedError" in after.source, "the exercise is no longer a task"
            assert re.search(r"vaelib\.exercises\.check_\w+|check_\w+\(", after.source), "the check is gone"
            assert after.outputs == [] and after.execution_count is None
            assert after.source == before.source
        elif "exercise" in tags(before):
            assert not re.search(r"\bsolutions?\b", after.source, re.I), after.source
            assert after.source.strip()
        elif tags(before) & {"launch-badge", "colab-setup"}:
            assert f"@{BRANCH}" in after.source or f"/blob/{BRANCH}/notebooks/{source.name}" in after.source
        else:
            assert after == before, f"cell {before.get('id')} of {source.name} changed"
    assert exercises, f"{source.name} has no code cell tagged 'exercise'"
    # The hand-out (no branch) drops the badge: it would open the repository's notebook, solutions included.
    handed = released(handout, source)
    assert not any("launch-badge" in tags(c) for c in handed.cells)
    assert any("colab-setup" in tags(c) for c in handed.cells)


def test_readme_badges_point_at_the_release_branch(release):
    readme = (release / "README.md").read_text()
    assert "/v2/gh/" in readme and f"/{BRANCH}?labpath=" in readme
    assert "/blob/main/" not in readme and f"/blob/{BRANCH}/" in readme


def defined_names(tree):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def python(source):
    """A cell's source as Python: IPython magics and shell escapes replaced by `pass`."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name[:2])
def test_no_kept_cell_needs_a_removed_solution(source):
    """Cheap, for every notebook: a name that only a solution cell defines is never used by a cell after it."""
    nb = nbformat.read(source, as_version=4)
    defined_elsewhere, removed = set(), {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tree = ast.parse(python(cell.source))
        if "solution" in tags(cell):
            for name in defined_names(tree) - defined_elsewhere:
                removed.setdefault(name, i)
            continue
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        bad = {name for name in used & set(removed) if removed[name] < i}
        assert not bad, f"{source.name}: cell {i} uses {sorted(bad)}, defined only by a removed solution cell"
        defined_elsewhere |= defined_names(tree)
        for name in defined_names(tree):
            removed.pop(name, None)


@pytest.fixture(scope="module")
def executed(release):
    """The released notebooks in EXECUTE, run top to bottom in the release's own folder with the release's
    own vaelib first on the path; errors allowed so every cell runs, then inspected."""
    from nbclient import NotebookClient

    env_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(release), env_before]))
    try:
        results = {}
        for name in EXECUTE:
            nb = nbformat.read(release / "notebooks" / name, as_version=4)
            NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                           resources={"metadata": {"path": str(release / "notebooks")}}).execute()
            results[name] = nb
        return results
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = env_before


@pytest.mark.parametrize("name", EXECUTE, ids=lambda n: n[:2])
def test_released_notebook_runs_except_its_exercises(executed, release, name):
    nb = executed[name]
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        if "exercise" in tags(cell):
            # The task's own message: the stub's NotImplementedError, raised, or reported by the check.
            assert ([e.ename for e in errors] == ["NotImplementedError"]) or (not errors and NOT_DONE in text), \
                f"{name} exercise cell {i}: {errors or text!r}"
        else:
            assert not errors, f"{name} cell {i} failed: {errors[0].ename}: {errors[0].evalue}"


MISTAKES = r"""
import contextlib, io, json, re, sys
import vaelib.exercises as ex
assert ex.__file__.startswith(sys.argv[1]), ex.__file__  # the release's own copy
report = {}
for name in json.loads(sys.argv[2]):
    check = getattr(ex, name)
    seen = []
    original = ex._check
    ex._check = lambda answer, what, cases, expected, mistakes, *a, **k: seen.extend(mistakes) or False
    def stub(*args):
        raise NotImplementedError
    with contextlib.redirect_stdout(io.StringIO()):
        check(stub)
    ex._check = original
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert check(stub) is False
    named = []
    for wrong, mistake, hint in seen:
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            ok = check(wrong)
        named.append([mistake, said.getvalue(), ok])
    report[name] = {"stub": out.getvalue(), "mistakes": named}
print(json.dumps(report))
"""


def test_checks_import_from_the_release_and_name_the_classic_mistakes(release):
    """Every check an exercise cell calls exists in the release's vaelib; fed the task as released it says
    "not done yet"; fed each classic mistake it declares (its list of wrong answers) it names it."""
    called = set()
    for source in SOURCES:
        for cell in released(release, source).cells:
            if "exercise" in tags(cell) and cell.cell_type == "code":
                called |= set(re.findall(r"\b(check_\w+)\(", cell.source))
    assert called
    result = subprocess.run([sys.executable, "-c", MISTAKES, str(release), json.dumps(sorted(called))],
                            cwd=release, env=dict(os.environ, PYTHONPATH=str(release)),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for name, found in report.items():
        assert NOT_DONE in found["stub"], f"{name} on the released stub: {found['stub']!r}"
        for mistake, said, ok in found["mistakes"]:
            assert ok is False and "Not quite" in said, f"{name} does not name {mistake!r}: {said!r}"
    assert sum(len(found["mistakes"]) for found in report.values()) >= len(report)
