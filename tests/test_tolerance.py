"""The tolerance hook: a trained figure passes within its band and fails outside it, exact figures stay exact."""

import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT
from tolerance import ToleranceError, align, compare_order, count_numbers, numbers


def stream(text):
    return {"output_type": "stream", "name": "stdout", "text": text}


STORED = [stream("after 30 epochs: negative ELBO 142.2 (train), 146.9 (held out)\n")]


def test_numbers_are_read_in_order_with_signs_and_thousands():
    assert [v for _, _, v in numbers("1,890 steps, z in [-3.3, 4.0], 95 %")] == [1890, -3.3, 4.0, 95]
    assert count_numbers(STORED) == 3


def test_a_figure_within_its_band_is_written_as_stored():
    fresh = [stream("after 30 epochs: negative ELBO 143.0 (train), 145.6 (held out)\n")]
    assert align(fresh, STORED, [0, 1.5, 1.5]) == STORED


def test_a_figure_outside_its_band_is_left_to_fail():
    fresh = [stream("after 30 epochs: negative ELBO 142.2 (train), 148.5 (held out)\n")]
    assert align(fresh, STORED, [0, 1.5, 1.5])[0]["text"].endswith("148.5 (held out)\n")


def test_an_exact_figure_stays_exact():
    fresh = [stream("after 29 epochs: negative ELBO 142.2 (train), 146.9 (held out)\n")]
    assert "29 epochs" in align(fresh, STORED, [0, 1.5, 1.5])[0]["text"]


def test_other_words_or_another_count_of_numbers_are_left_to_fail():
    fresh = [stream("after 30 epochs: negative ELBO 142.2 (train)\n")]
    assert align(fresh, STORED, [0, 1.5, 1.5]) == fresh


def test_a_band_list_that_does_not_fit_the_stored_output_is_an_error():
    with pytest.raises(ToleranceError, match="3 numbers"):
        align(STORED, STORED, [1.5])
    with pytest.raises(ToleranceError, match="bands >= 0"):
        align(STORED, STORED, [0, -1, 1])


def display(text):
    return {"output_type": "display_data", "metadata": {}, "data": {"text/plain": text}}


def test_bands_follow_their_numbers_when_nbval_joins_the_streams():
    # file order: stdout (1 number), a progress bar (2), stdout again (2); nbval compares stdout joined first
    outputs = [stream("loss 10.0\n"), display("15 epochs, 945 steps"), stream("held out 146.9, 1061 KB\n")]
    assert compare_order([0.5, 0, 0, 1.5, 0], outputs) == [0.5, 1.5, 0, 0, 0]


CASES = [  # (what the cell prints now, its bands, whether nbval passes it); every cell stored "held out 146.9 nats"
    ("held out 146.0 nats", [1.5], True),       # within the band
    ("held out 148.5 nats", [1.5], False),      # outside it
    ("held out 146.9 nats", [0], True),         # exact and equal
    ("held out 147.0 nats", [0], False),        # exact and different
    ("held out 146.9 nats", [1.5, 1], False),   # a band list that does not fit the stored output
    ("held out 146.9 nats", None, True),        # no metadata: compared as nbval always does
    ("held out 146.8 nats", None, False),
]


def run_nbval(notebooks):
    """Write each of ``notebooks`` ({path: cells}, all in one folder) and run strict nbval on them in one pytest
    with this conftest; return ({file name: verdicts [(PASSED or FAILED, cell number)]}, pytest's output)."""
    for path, cells in notebooks.items():
        nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
        path.write_text(json.dumps(nb))
    folder = next(iter(notebooks)).parent
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "--nbval", "--nbval-current-env",
                          "-p", "no:cacheprovider", "-rA", "--rootdir", str(folder), *map(str, notebooks)],
                         cwd=ROOT, capture_output=True, text=True)
    verdicts = {}
    for path in notebooks:
        found = re.findall(rf"(PASSED|FAILED) \S*{re.escape(path.name)}::Cell (\d+)", run.stdout)
        verdicts[path.name] = [(verdict, int(cell)) for verdict, cell in found]
    return verdicts, run.stdout + run.stderr


def trained_cells():
    """A notebook whose cells stored 146.9 and now print other figures (CASES)."""
    return [{"cell_type": "code", "execution_count": i + 1, "id": f"case{i}",
             "metadata": {} if bands is None else {"tolerance": bands},
             "source": [f"print({printed!r})"], "outputs": [stream("held out 146.9 nats\n")]}
            for i, (printed, bands, _) in enumerate(CASES)]


def interleaved_cells():
    """Cells that print, display, then print again (as fit's progress bar sits between two prints): the first
    within its bands, the second outside."""
    stored = [stream("loss 10.0\n"), {**display("15 epochs"), "metadata": {}},
              stream("held out 146.9 nats\n")]
    source = ("from IPython.display import display\n"
              "class Bar:\n    def __repr__(self): return '15 epochs'\n"
              "print('loss {}')\ndisplay(Bar())\nprint('held out {} nats')")
    return [{"cell_type": "code", "execution_count": i + 1, "id": f"case{i}", "metadata": {"tolerance": [0.5, 0, 1.5]},
             "source": [source.format(*printed)], "outputs": stored}
            for i, printed in enumerate([("10.2", "146.0"), ("10.2", "148.5")])]


@pytest.fixture(scope="module")
def nbval_run(tmp_path_factory):
    """Both notebooks run by nbval with this conftest, in one pytest (a pytest and its kernels take seconds to start)."""
    folder = tmp_path_factory.mktemp("nbval")
    return run_nbval({folder / "trained.ipynb": trained_cells(), folder / "interleaved.ipynb": interleaved_cells()})


def test_nbval_with_this_conftest_applies_the_bands(nbval_run):
    """The hook as nbval runs it: a notebook whose cells stored 146.9 and now print other figures."""
    found, out = nbval_run[0]["trained.ipynb"], nbval_run[1]
    verdicts = {cell: verdict for verdict, cell in found}
    first = min(verdicts, default=0)   # nbval 0.11 numbers cells from 0; later releases from 1
    for i, (printed, bands, passes) in enumerate(CASES):
        assert verdicts.get(first + i) == ("PASSED" if passes else "FAILED"), \
            f"cell printing {printed!r} with bands {bands}\n{out[-3000:]}"


def test_nbval_applies_the_bands_in_file_order_around_a_display(nbval_run):
    """A cell that prints, displays, then prints again (as fit's progress bar sits between two prints)."""
    found, out = nbval_run[0]["interleaved.ipynb"], nbval_run[1]
    assert [verdict for verdict, _ in found] == ["PASSED", "FAILED"], out[-3000:]
