"""What keeps the notebooks readable from the back of a room (issue "Teach VAEs right", section 4).

A slide is a screen: no Markdown cell over 150 words. Figures legible on a projector: no stored
image output under 150 px tall. Both are read from the stored notebooks, so they hold for GitHub,
nbviewer and the slides as well as for a live kernel.
"""

import base64
import json
import re
import struct
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
MAX_WORDS = 150
MIN_IMAGE_HEIGHT = 150


def words(markdown):
    """Words a reader reads: Markdown syntax, link targets and LaTeX commands do not count."""
    text = re.sub(r"\]\([^)]*\)", "]", markdown)          # link targets
    text = re.sub(r"\\[a-zA-Z]+", " ", text)               # \mathbb, \sigma, ...
    return [w for w in re.split(r"\s+", text) if re.search(r"[A-Za-z0-9]", w)]


def png_height(data):
    raw = base64.b64decode(data)
    if raw[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return struct.unpack(">I", raw[20:24])[0]


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_words_counts_what_a_reader_reads():
    assert len(words("See [notebook 01](01_autoencoder.ipynb): $\\sigma^2$ is a **beta**.")) == 7  # See, [notebook, 01]:, ^2$, is, a, **beta**.


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_markdown_cell_over_150_words(path):
    long = [(i, len(words("".join(c["source"])))) for i, c in enumerate(cells(path))
            if c["cell_type"] == "markdown" and len(words("".join(c["source"]))) > MAX_WORDS]
    assert not long, f"{path.name}: Markdown cells over {MAX_WORDS} words (cell index, words): {long}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_stored_image_under_150_px(path):
    small = [(i, png_height(out["data"]["image/png"]))
             for i, c in enumerate(cells(path)) if c["cell_type"] == "code"
             for out in c.get("outputs", []) if "image/png" in out.get("data", {})
             if png_height(out["data"]["image/png"]) < MIN_IMAGE_HEIGHT]
    assert not small, f"{path.name}: stored images under {MIN_IMAGE_HEIGHT} px tall (cell index, height): {small}"


# A lesson, not a lab: what a student reads is the lesson; the machinery that checks it lives in tests/.
ROOT = Path(__file__).resolve().parent.parent
ANSWERS = sorted((ROOT / "answers").glob("*.ipynb"))
#: Expected values typed into a cell before they are computed.
TYPED_EXPECTATION = re.compile(r"\bapprox\(|\biter\(\s*\[|\bshown\s*=")
#: Words of the test apparatus: emulated CPUs and their kernels.
CPU_WORDS = re.compile(r"\bATEN|\bAVX|\bSSE4|\bMKL|\b[Ee]mulat")
#: Words of the team, not of the series: issue numbers, helpers' names.
INTERNAL_WORDS = re.compile(r"\bissues? \d+|\bH\d\b|\bhelper-\d")
MAX_NOTEBOOK_WORDS = 2000
MAX_SLIDES = 30


def prose_words(markdown):
    """Words of prose as a reader counts them: no link targets, table rows or LaTeX commands."""
    return len(words(re.sub(r"^\s*\|.*\|\s*$", "", markdown, flags=re.M)))


def text_of(path, kinds=("code", "markdown")):
    return "\n".join("".join(c["source"]) for c in cells(path) if c["cell_type"] in kinds)


@pytest.mark.parametrize("path", NOTEBOOKS + ANSWERS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_expected_value_is_typed_into_a_cell(path):
    found = TYPED_EXPECTATION.findall(text_of(path, ("code",)))
    assert not found, f"{path.name}: typed expectations {found}: print the figure, give it a band in metadata"


@pytest.mark.parametrize("path", NOTEBOOKS + ANSWERS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_word_of_emulated_cpus(path):
    found = CPU_WORDS.findall(text_of(path))
    assert not found, f"{path.name}: {found}"


@pytest.mark.parametrize("path", [*NOTEBOOKS, *ANSWERS, ROOT / "README.md", ROOT / "LECTURERS.md"],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_internal_words_where_users_read(path):
    text = text_of(path) if path.suffix == ".ipynb" else path.read_text()
    found = INTERNAL_WORDS.findall(text)
    assert not found, f"{path.name}: {found}"


def test_the_style_checks_catch_what_they_name():
    assert TYPED_EXPECTATION.search("approx(loss, 146.9, 1.5)") and TYPED_EXPECTATION.search("shown = iter([3])")
    assert CPU_WORDS.search("ATEN_CPU_CAPABILITY=avx2") and CPU_WORDS.search("emulated CPUs")
    assert not CPU_WORDS.search("the latent average")
    assert INTERNAL_WORDS.search("measured for issue 12") and INTERNAL_WORDS.search("H2's recipes")
    assert prose_words("one two\n| a | b |\n") == 2


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_is_one_sitting(path):
    prose = sum(prose_words("".join(c["source"])) for c in cells(path) if c["cell_type"] == "markdown")
    slides = sum(1 for c in cells(path)
                 if c.get("metadata", {}).get("slideshow", {}).get("slide_type") in ("slide", "subslide"))
    assert prose <= MAX_NOTEBOOK_WORDS and slides <= MAX_SLIDES, \
        f"{path.name}: {prose} words and {slides} slides (at most {MAX_NOTEBOOK_WORDS} and {MAX_SLIDES})"


@pytest.mark.parametrize("path", ANSWERS, ids=lambda p: p.stem)
def test_answers_have_no_launch_cells(path):
    """The answers are for lecturers: no Colab badge or set-up cell (scripts/execute_notebooks.py adds them
    only to the lessons)."""
    tags = {t for c in cells(path) for t in c.get("metadata", {}).get("tags", [])}
    assert not tags & {"launch-badge", "colab-setup"}

