"""The repository's layout, shared by the scripts: its root, and the notebooks a script works on.

A script run as ``python scripts/NAME.py`` finds this module next to it (Python puts the script's
folder first on its path), and the tests find it through pytest's ``pythonpath`` (pyproject.toml).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def notebooks(paths=()):
    """The notebooks named (e.g. on the command line), or else every notebook of the series, in order."""
    return [Path(p) for p in paths] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
