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
