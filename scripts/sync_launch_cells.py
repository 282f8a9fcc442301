"""Write the launch cells of every notebook from the one repository URL in pyproject.toml.

Each notebook in notebooks/ starts with two cells this script owns (found by their tags):
  * "launch-badge": an "Open in Colab" badge pointing at this notebook in the repository;
  * "colab-setup":  a code cell that installs vaelib from the repository, only on Colab.
It also rewrites the Binder and Colab links in README.md. For a fork, change
[project.urls] Repository in pyproject.toml and run:  python scripts/sync_launch_cells.py
Then re-run the notebooks (the set-up cell is code, so execution counts shift when it is new).
"""

import json
import re
import sys

from repo import ROOT, notebooks


def repository_url():
    """The GitHub URL in pyproject.toml, e.g. https://github.com/OWNER/REPO (no trailing slash)."""
    found = re.search(r'^Repository\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    url = found.group(1).rstrip("/") if found else ""
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise SystemExit(f"Repository URL must look like https://github.com/OWNER/REPO, got {url}")
    return url


def badge_markdown(url, notebook_name):
    slug = url.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{slug}/blob/main/notebooks/{notebook_name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})"


def setup_source(url):
    """Three lines: on Colab only, install vaelib from the repository (Colab's own torch, numpy and
    ipywidgets stay). How torch's threads wait is vaelib's business (vaelib/threads.py), not the student's."""
    return (
        "import sys\n"
        'if "google.colab" in sys.modules:  # on Colab: install vaelib (Colab\'s torch, numpy and ipywidgets stay)\n'
        f'    %pip install -q --no-deps "vaelib @ git+{url}"'
    )


def _lines(text):
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]


def launch_cells(url, notebook_name):
    badge = {"cell_type": "markdown", "id": "launch-badge",
             "metadata": {"tags": ["launch-badge"], "slideshow": {"slide_type": "skip"}},
             "source": _lines(badge_markdown(url, notebook_name))}
    setup = {"cell_type": "code", "id": "colab-setup", "execution_count": None, "outputs": [],
             "metadata": {"tags": ["colab-setup"], "slideshow": {"slide_type": "skip"}},
             "source": _lines(setup_source(url))}
    return [badge, setup]


def sync_notebook(path, url):
    nb = json.loads(path.read_text())
    owned = {"launch-badge", "colab-setup"}
    old = [c for c in nb["cells"] if owned & set(c.get("metadata", {}).get("tags", []))]
    rest = [c for c in nb["cells"] if c not in old]
    new = launch_cells(url, path.name)
    if len(old) == 2 and old[1].get("execution_count") is not None:  # keep the stored run intact
        new[1]["execution_count"] = old[1]["execution_count"]
        new[1]["outputs"] = old[1]["outputs"]
    nb["cells"] = new + rest
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"  # nbformat's layout
    if text != path.read_text():
        path.write_text(text)
        return True
    return False


def sync_readme(url):
    readme = ROOT / "README.md"
    if not readme.exists():
        return False
    slug = url.removeprefix("https://github.com/")
    text = readme.read_text()
    new = re.sub(r"(mybinder\.org/v2/gh/)[\w.-]+/[\w.-]+(/)", rf"\g<1>{slug}\2", text)
    new = re.sub(r"(colab\.research\.google\.com/github/)[\w.-]+/[\w.-]+(/)", rf"\g<1>{slug}\2", new)
    if new != text:
        readme.write_text(new)
        return True
    return False


def main(paths):
    url = repository_url()
    for path in notebooks(paths):
        if sync_notebook(path, url):
            print(f"updated {path.relative_to(ROOT) if path.is_absolute() else path}")
    if not paths and sync_readme(url):
        print("updated README.md")


if __name__ == "__main__":
    main(sys.argv[1:])
