"""The ways into the series: README commands, CI, Colab badges and set-up cells, Binder, slides."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
from sync_launch_cells import repository_url  # scripts/ is on pytest's pythonpath (pyproject.toml)

URL = repository_url()
SLUG = URL.removeprefix("https://github.com/")


def cells(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


def code_of(path):
    """The text of a notebook's code cells."""
    return "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")


def tagged(path, tag):
    found = [c for c in cells(path) if tag in c.get("metadata", {}).get("tags", [])]
    assert len(found) == 1, f"{path.name}: expected one cell tagged {tag!r}, found {len(found)}"
    return found[0]


def test_there_are_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS][:7] == ["00", "01", "02", "03", "04", "05", "06"][:len(NOTEBOOKS)]
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_with_its_colab_badge_and_guarded_setup(path):
    first, second = cells(path)[:2]
    assert first is not None and "launch-badge" in first["metadata"]["tags"]
    link = f"https://colab.research.google.com/github/{SLUG}/blob/main/notebooks/{path.name}"
    assert f"]({link})" in source(first) and "colab-badge.svg" in source(first)
    assert "colab-setup" in second["metadata"]["tags"] and second["cell_type"] == "code"
    assert f'"vaelib @ git+{URL}"' in source(second)
    assert second["outputs"] == [], "outside Colab the set-up cell must print nothing"


def run_setup_cell(path, on_colab):
    """Execute the set-up cell's code with a stand-in IPython that records magics."""
    calls = []

    class FakeIPython:
        def run_line_magic(self, name, line, *args):
            calls.append((name, line))

    code = TransformerManager().transform_cell(source(tagged(path, "colab-setup")))
    saved = sys.modules.get("google.colab")
    try:
        if on_colab:
            sys.modules["google.colab"] = object()
        else:
            sys.modules.pop("google.colab", None)
        exec(code, {"get_ipython": FakeIPython})
    finally:
        if saved is not None:
            sys.modules["google.colab"] = saved
        else:
            sys.modules.pop("google.colab", None)
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_does_nothing_outside_colab_and_installs_only_vaelib_on_colab(path):
    assert run_setup_cell(path, on_colab=False) == []
    (magic, line), = run_setup_cell(path, on_colab=True)
    assert magic == "pip" and "--no-deps" in line and "install" in line
    for keep in ("torch", "numpy", "ipywidgets"):
        assert keep not in line.replace("vaelib", ""), f"the Colab cell must not reinstall {keep}"


def test_repository_url_is_the_same_everywhere():
    readme = (ROOT / "README.md").read_text()
    slugs = set(re.findall(r"mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/", readme))
    slugs |= set(re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/", readme))
    for path in NOTEBOOKS:
        text = path.read_text()
        slugs |= set(re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/", text))
        slugs |= set(re.findall(r"git\+https://github\.com/([\w.-]+/[\w.-]+?)\\?\"", text))
    assert slugs == {SLUG}


def test_readme_has_binder_badge_opening_the_welcome_notebook():
    readme = (ROOT / "README.md").read_text()
    assert f"https://mybinder.org/v2/gh/{SLUG}/HEAD?labpath=notebooks%2F00_welcome.ipynb" in readme
    assert "https://mybinder.org/badge_logo.svg" in readme


# Names checked on conda-forge's package pages (December 2026). Add a name only after checking it there:
# one wrong name fails the whole Binder build, and the build cannot be tried from here.
CONDA_FORGE_NAMES = {"python", "pip", "pytorch-cpu", "numpy", "matplotlib-base", "tqdm", "ipywidgets", "jupyterlab",
                     "jupyterlab_rise"}
CONDA_TO_PIP = {"pytorch-cpu": "torch", "matplotlib-base": "matplotlib", "jupyterlab_rise": "jupyterlab-rise"}
TEST_ONLY = {"pytest", "nbval", "playwright", "pytest-xdist"}


def requirement_lines(lines):
    """``{name: spec}`` of requirement lines such as ``torch>=2.2`` or ``- pytorch-cpu>=2.2`` (comments dropped)."""
    found = {}
    for line in lines:
        line = line.split("#")[0].strip().removeprefix("- ").strip()
        match = re.fullmatch(r"([A-Za-z][\w.-]*)\s*(.*)", line)
        if match:
            found[match.group(1)] = match.group(2).replace(" ", "")
    return found


def environment_yml():
    text = (ROOT / "environment.yml").read_text()
    return requirement_lines(text.split("dependencies:", 1)[1].splitlines())


def requirements_txt():
    """(runtime, test-only) requirements of requirements.txt, split at its '--- tests only' line."""
    runtime, tests = (ROOT / "requirements.txt").read_text().split("# --- tests only", 1)
    normalize = lambda reqs: {re.sub(r"[-_.]+", "-", name).lower(): spec for name, spec in reqs.items()}  # noqa: E731
    return normalize(requirement_lines(runtime.splitlines())), normalize(requirement_lines(tests.splitlines()[1:]))


def test_binder_environment_holds_the_runtime_requirements_and_no_test_only_package():
    env = environment_yml()
    runtime, tests = requirements_txt()
    assert set(tests) == TEST_ONLY
    assert set(env) <= CONDA_FORGE_NAMES, f"not checked on conda-forge: {set(env) - CONDA_FORGE_NAMES}"
    as_pip = {CONDA_TO_PIP.get(name, name): spec for name, spec in env.items() if name not in ("python", "pip")}
    assert as_pip == runtime, "environment.yml and requirements.txt must name the same runtime packages and minimums"
    assert not TEST_ONLY & set(as_pip) and "playwright-python" not in env, "tests do not run on Binder"
    assert all(spec.startswith(">=") for spec in runtime.values()), "ranges, not pins (Colab and Binder must solve)"
    text = (ROOT / "environment.yml").read_text()
    assert "conda-forge" in text and "nodefaults" in text and "pytorch-cpu" in env, "Binder gets the CPU-only build"


def test_binder_installs_vaelib_and_leaves_the_kernels_environment_alone():
    assert "pip install --no-deps -e ." in (ROOT / "postBuild").read_text()
    assert os.access(ROOT / "postBuild", os.X_OK)
    assert not (ROOT / "start").exists(), "fit follows the load; kernels need no wait settings (vaelib/threads.py)"


def test_readme_install_command_installs_runtime_and_test_packages():
    install = readme_commands()[0]
    assert "-r requirements.txt" in install and "-e ." in install
    runtime, tests = requirements_txt()
    assert {"torch", "jupyterlab", "jupyterlab-rise"} <= set(runtime) and set(tests) == TEST_ONLY


def readme_commands():
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.strip().splitlines()]


def test_readme_gives_install_open_and_test_commands_and_ci_runs_them():
    install, open_, test = readme_commands()
    assert install.startswith("pip install") and open_.startswith("jupyter lab") and test == "pytest"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert install in ci and test in ci
    assert ci.index("pip install torch==2.13.0") < ci.index(install) < ci.index(test)
    assert "pytest -m interruption" in ci, "the interruption tests, apart from the README's pytest, run in CI"


def calls(code, names):
    """Whether ``code`` (a notebook's code cells, magics and shell lines aside) calls a function or method
    named in ``names``: a call, not the name printed in a string."""
    python = TransformerManager().transform_cell(code)   # %pip, %matplotlib ... as the kernel runs them
    return any(isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in names
               for node in ast.walk(ast.parse(python)))


def test_ci_reruns_every_notebook_that_trains_under_both_emulated_cpus():
    ci = (ROOT / ".ci" / "run").read_text()
    listed = re.search(r"TRAINING_NOTEBOOKS=\((.*?)\)", ci, re.S).group(1).split()
    trains = [f"notebooks/{p.name}" for p in NOTEBOOKS if calls(code_of(p), {"fit", "step"})]
    assert listed == trains, "the notebooks that call fit or an optimizer's step are the ones CI emulates"
    for cpu in ("ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2",
                "ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2"):
        assert re.search(rf"env {cpu} \\\n\s*python -m pytest -p tests.conftest \"\$\{{TRAINING_NOTEBOOKS\[@\]\}}\" "
                         rf"\"\$\{{MEASURING_NOTEBOOKS\[@\]\}}\" \"\$\{{THEIR_ANSWERS\[@\]\}}\"", ci)
    measuring = re.search(r"MEASURING_NOTEBOOKS=\((.*?)\)", ci, re.S).group(1).split()
    assert measuring and all((ROOT / name).exists() and name not in trains for name in measuring)
    # their answers, as the script builds the list: every answer that trains is among them
    lists = ci[ci.index("TRAINING_NOTEBOOKS=("):ci.index("failed=()")]
    answers = subprocess.run(["bash", "-c", lists + '\nprintf "%s\\n" "${THEIR_ANSWERS[@]}"'],
                             capture_output=True, text=True, check=True).stdout.split()
    assert answers == [f"answers/{Path(name).name[:2]}_answers.ipynb" for name in listed + measuring]
    assert all((ROOT / name).exists() for name in answers)
    training_answers = [f"answers/{p.name}" for p in sorted((ROOT / "answers").glob("*.ipynb"))
                        if calls(code_of(p), {"fit", "step"})]
    assert training_answers and set(training_answers) <= set(answers)


def test_ci_builds_colab_versions_from_the_one_constraints_file():
    ci = (ROOT / ".ci" / "run").read_text()
    pins = dict(line.split("==") for line in (ROOT / ".ci" / "colab-constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert {"ipywidgets": "7.7.1", "numpy": "2.0.2"}.items() <= pins.items()
    assert pins["matplotlib"].startswith("3.10") and pins["ipykernel"].startswith("6.") and pins["tqdm"].startswith("4.67")
    assert "-c .ci/colab-constraints.txt" in ci and "pip\" install -q torch==2.13.0" in ci
    assert ".ci/colab_setup_check.py" in ci and "tests/test_widgets.py notebooks" in ci


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_slide_metadata_and_solutions_are_hidden(path):
    for cell in cells(path):
        kind = cell["metadata"].get("slideshow", {}).get("slide_type")
        assert kind in ("slide", "subslide", "fragment", "skip", "notes", "-"), source(cell)[:60]
        if "solution" in cell["metadata"].get("tags", []):
            assert kind == "skip"
    assert cells(path)[2]["metadata"]["slideshow"]["slide_type"] == "slide", "the title opens the deck"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_exports_as_slides(path, tmp_path):
    from nbconvert import SlidesExporter

    html, _ = SlidesExporter(reveal_url_prefix="reveal.js").from_filename(str(path))
    slides = sum(c["metadata"]["slideshow"]["slide_type"] == "slide" for c in cells(path))
    assert html.count("<section") >= slides > 1
    (tmp_path / path.with_suffix(".slides.html").name).write_text(html)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_is_listed_in_the_readme_the_welcome_notebook_and_lecturers_guide(path):
    welcome = "".join(source(c) for c in cells(NOTEBOOKS[0]) if c["cell_type"] == "markdown")
    assert f"](notebooks/{path.name})" in (ROOT / "README.md").read_text(), f"README.md does not link {path.name}"
    assert f"`{path.stem}`" in welcome, f"00_welcome's list of notebooks misses {path.stem}"
    assert f"`{path.stem}`" in (ROOT / "LECTURERS.md").read_text(), f"LECTURERS.md misses {path.stem}"


# --- a busy machine: nbval's wait for outputs (tests/conftest.py) ------------------------------------

PROBE = '''
import os
def pytest_collection_finish(session):
    waits = sorted({i.output_timeout for i in session.items if type(i).__module__.startswith("nbval")})
    print("NBVAL_WAITS", waits, "OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY"),
          "GOMP_SPINCOUNT", os.environ.get("GOMP_SPINCOUNT"))
'''


@pytest.mark.parametrize("args", [["tests/test_launch.py"], ["-p", "tests.conftest"]],
                         ids=["whole-suite", "one-notebook"])
def test_conftest_gives_nbval_cells_a_longer_wait_for_output(args, tmp_path):
    """Collected as `pytest` collects (tests/ among the paths) or with the conftest named as a plugin,
    every nbval cell waits 60 s for its outputs, not nbval's fixed 5 s, and kernels get the wait policy."""
    import os
    import subprocess

    from conftest import NBVAL_OUTPUT_WAIT

    (tmp_path / "nbval_probe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0", "-p", "nbval_probe", *args,
                          "notebooks/00_welcome.ipynb"], cwd=ROOT, env=env, capture_output=True, text=True)
    expected = f"NBVAL_WAITS [{NBVAL_OUTPUT_WAIT}] OMP_WAIT_POLICY PASSIVE GOMP_SPINCOUNT 1000"
    assert expected in out.stdout, out.stdout + out.stderr
    assert NBVAL_OUTPUT_WAIT >= 60


# --- stored widgets, seen before the notebook runs (Colab, nbviewer, GitHub) ---------------------------

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def widget_outputs(nb):
    return [o for c in nb["cells"] for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_widgets_show_their_text_where_the_widget_cannot_be_drawn(path):
    """A notebook opened before it runs shows each widget from the stored state (JupyterLab, nbviewer), or,
    where that state cannot be used (Colab's ipywidgets 7 front end reads no @jupyter-widgets/controls 2.0.0
    models; GitHub, a viewer without JavaScript), the widget's stored text/plain: a description, never an error."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)  # e.g. GitHub refuses widget metadata without its "state" key
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    outputs = widget_outputs(nb)
    for output in outputs:
        text = "".join(output["data"].get("text/plain", ""))
        assert text.strip() and "Loading" not in text, f"{path.name}: a widget output without a text fallback"
        model = output["data"][WIDGET_VIEW]["model_id"]
        todo, seen = [model] if model in state else [], set()
        while todo:  # a stored widget draws only if every model it refers to is stored too
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                assert name in state, f"{path.name}: widget {model} refers to {name}, which is not stored"
                todo += re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state[name]))
    if outputs:  # without usable state, nbconvert (nbviewer, GitHub) shows the text instead
        nb.metadata.pop("widgets", None)
        html, _ = HTMLExporter().from_notebook_node(nb)
        for output in outputs:
            first_line = "".join(output["data"]["text/plain"]).splitlines()[0]
            assert first_line.replace("<", "&lt;").replace(">", "&gt;")[:40] in html


# --- run times: scripts/execute_notebooks.py --time-only -------------------------------------------------

def test_time_only_runs_notebooks_under_nbval_and_prints_seconds_per_notebook():
    """--time-only times what `pytest notebooks` runs (strict nbval), notebook by notebook."""
    import re
    import subprocess

    out = subprocess.run([sys.executable, "scripts/execute_notebooks.py", "--time-only", "notebooks/00_welcome.ipynb"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    seconds = re.search(r"^00_welcome\.ipynb: ([\d.]+) s$", out.stdout, re.M)
    assert seconds and float(seconds.group(1)) > 0, out.stdout
    assert re.search(r"^total: [\d.]+ s; pytest: \d+ passed", out.stdout, re.M), out.stdout


def test_suite_report_sums_each_part_of_the_readme_test_command():
    """--suite's report: pytest's --durations lines summed per part and per test."""
    from execute_notebooks import PARTS, seconds_by_part

    report = """============================= slowest durations =============================
148.95s setup    tests/test_browser.py::test_rise_deck_of_01
2.00s call     tests/test_browser.py::test_rise_deck_of_01
53.58s call     tests/test_interrupt.py::test_an_interrupted_browser_test_leaves_no_process[sigterm]
23.29s call     notebooks/07_beta_and_collapse.ipynb::Cell 2
1.50s teardown notebooks/07_beta_and_collapse.ipynb::Cell 2
22.15s call     answers/05_answers.ipynb::Cell 5
0.50s call     tests/test_losses.py::test_iwae_k_1000_on_bundled_test_digits
(8 durations < 0.005s hidden.  Use -vv to show these durations.)
1 passed in 0.10s"""
    parts, tests = seconds_by_part(report)
    names = dict((prefix, name) for name, prefix in PARTS)
    assert parts == {names["tests/test_browser.py"]: 150.95, names["tests/test_interrupt.py"]: 53.58,
                     names["notebooks/"]: 24.79, names["answers/"]: 22.15, names["tests/"]: 0.5}
    assert tests.most_common(1) == [("tests/test_browser.py::test_rise_deck_of_01", 150.95)]
    assert tests["notebooks/07_beta_and_collapse.ipynb"] == 24.79  # a notebook's cells add up
