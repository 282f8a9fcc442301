"""Give every cell of every notebook its slide metadata, so each notebook opens as a deck.

Usage: python scripts/set_slides.py [notebooks/NN_name.ipynb ...]   (default: all)

Rules (jupyterlab-rise and `jupyter nbconvert --to slides` read `metadata.slideshow.slide_type`):
  * a Markdown cell starting with "# " or "## " opens a slide, "### " a sub-slide;
  * launch cells (badge, Colab set-up) and worked solutions are skipped in the deck;
  * everything else continues the current slide ("-").
Cells that train a model or run long estimates get the tag "heavy", so a lecturer can see which
cells to run before class (LECTURERS.md). Only metadata changes: stored outputs stay valid.
"""

import json
import sys

from repo import notebooks

HEAVY_CALLS = ("fit(", "iwae_log_likelihood(", "train_vae(")  # train_vae: 04's wrapper of fit
SKIPPED_TAGS = {"launch-badge", "colab-setup", "solution"}


def slide_type(cell):
    tags = set(cell.get("metadata", {}).get("tags", []))
    if tags & SKIPPED_TAGS:
        return "skip"
    if cell["cell_type"] == "markdown":
        first = "".join(cell["source"]).lstrip().split("\n", 1)[0]
        if first.startswith(("# ", "## ")):
            return "slide"
        if first.startswith("### "):
            return "subslide"
    # A sub-slide set by hand (to fit a 1280 x 720 screen, scripts/check_slides.py) is kept.
    if cell.get("metadata", {}).get("slideshow", {}).get("slide_type") == "subslide":
        return "subslide"
    return "-"


def is_heavy(cell):
    source = "".join(cell["source"])
    return cell["cell_type"] == "code" and any(call in source for call in HEAVY_CALLS)


def set_slides(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        meta = cell.setdefault("metadata", {})
        meta["slideshow"] = {"slide_type": slide_type(cell)}
        tags = [t for t in meta.get("tags", []) if t != "heavy"] + (["heavy"] if is_heavy(cell) else [])
        if tags:
            meta["tags"] = tags
        else:
            meta.pop("tags", None)
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if text != path.read_text():
        path.write_text(text)
        return True
    return False


def main(paths):
    for path in notebooks(paths):
        if set_slides(path):
            print(f"slides set: {path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
