"""Write the student release: every notebook without its worked solutions, ready to hand out.

Usage:
    python scripts/make_student_release.py [--out DIR] [--zip] [--branch BRANCH] [--repo URL]

It writes DIR (default build/student-release, which git ignores) holding what a student needs to
run the series anywhere: notebooks/ (processed as below), the vaelib package with its bundled
data and checkpoints, and the files that install it (pyproject.toml, requirements.txt,
environment.yml and postBuild for Binder, README.md and the pictures it shows). Lecturer-only
files (answers/, LECTURERS.md, tests/, scripts/, benchmarks/) stay out. With --zip it also writes
DIR.zip.

Each notebook goes through nbconvert preprocessors (no hand-edited JSON), chosen by cell tags,
never by position, so the notebooks may change freely:
  * cells tagged `solution` are removed (TagRemovePreprocessor): the worked solutions are gone;
  * code cells tagged `exercise` lose their stored outputs (a subclass of ClearOutputPreprocessor);
    their source stays as the task (`raise NotImplementedError`, then the check);
  * in Markdown cells tagged `exercise`, the sentence that points at the hidden worked solution is
    dropped (it would no longer be true);
  * launch cells: with --branch B the "Open in Colab" badge points at notebooks/NAME.ipynb on
    branch B and the Colab set-up cell installs vaelib from branch B (`git+URL@B`); the README's
    Binder and Colab badges point at B too. Without --branch the release is a hand-out (a folder or
    a zip, not published): the badge cell is dropped, since it would open the repository's own
    notebook, solutions included, and the set-up cell keeps installing vaelib from the repository.
Everything else (Markdown, code, stored outputs, slide metadata) is kept as stored.

DIR is replaced on each run, except a `.git` inside it (so DIR can be a git worktree of the
release branch). To be safe, DIR must be empty, new, or an earlier release (it holds the marker
file `.student-release`), and must not contain the repository. Publishing the release as its own
branch, for Colab and Binder: see LECTURERS.md.
"""

import argparse
import re
import shutil
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor, Preprocessor, TagRemovePreprocessor
from traitlets import Unicode

from repo import ROOT, notebooks
from sync_launch_cells import repository_url

DEFAULT_OUT = ROOT / "build" / "student-release"
MARKER = ".student-release"
SOLUTION_TAG, EXERCISE_TAG = "solution", "exercise"
BADGE_TAG, SETUP_TAG = "launch-badge", "colab-setup"
# What a student needs besides the notebooks (globs relative to the repository root).
STUDENT_FILES = ["README.md", "pyproject.toml", "requirements.txt", "environment.yml", "postBuild", ".gitignore",
                 "LICENSE*", "docs/*.png", "vaelib/*.py", "vaelib/assets/*"]


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


class ClearExerciseOutputs(ClearOutputPreprocessor):
    """Clear the outputs (and execution count) of code cells tagged `exercise`; leave every other cell as stored."""

    def preprocess_cell(self, cell, resources, index):
        if EXERCISE_TAG in tags(cell):
            return super().preprocess_cell(cell, resources, index)
        return cell, resources


class DropSolutionPointers(Preprocessor):
    """In Markdown cells tagged `exercise`, drop each sentence that mentions the (now removed) solution."""

    SENTENCE = re.compile(r"[^.!?\n]*\bsolutions?\b[^.!?\n]*[.!?]?[ \t]*", re.IGNORECASE)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and EXERCISE_TAG in tags(cell):
            cell.source = self.SENTENCE.sub("", cell.source).rstrip()
        return cell, resources


class PointLaunchCellsAt(Preprocessor):
    """Point the Colab badge and the Colab set-up cell at ``branch`` of ``repo``; without a branch,
    drop the badge (it would open the repository's notebook, solutions included)."""

    branch = Unicode("", help="the release branch; empty for a hand-out").tag(config=True)
    repo = Unicode("", help="https://github.com/OWNER/REPO").tag(config=True)

    def preprocess(self, nb, resources):
        if not self.branch:
            nb.cells = [cell for cell in nb.cells if BADGE_TAG not in tags(cell)]
            return nb, resources
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = point_links_at(cell.source, self.repo, self.branch)
        if SETUP_TAG in tags(cell):
            new = re.sub(r'git\+https://github\.com/[\w.-]+/[\w.-]+?(\.git)?(@[\w./-]+)?"',
                         f'git+{self.repo}@{self.branch}"', cell.source)
            if new == cell.source and self.branch not in cell.source:
                raise SystemExit(f"set-up cell without a git+https://github.com/... install line:\n{cell.source}")
            cell.source = new
        return cell, resources


def point_links_at(text, repo, branch):
    """Colab (`.../github/OWNER/REPO/blob/REF/...`) and Binder (`.../v2/gh/OWNER/REPO/REF?...`) links -> repo, branch."""
    slug = repo.removeprefix("https://github.com/")
    text = re.sub(r"(colab\.research\.google\.com/github/)[\w.-]+/[\w.-]+/blob/[\w.-]+/", rf"\g<1>{slug}/blob/{branch}/",
                  text)
    return re.sub(r"(mybinder\.org/v2/gh/)[\w.-]+/[\w.-]+/[\w.%-]+", rf"\g<1>{slug}/{branch}", text)


def release_notebook(path, branch="", repo=""):
    """The student version of one notebook (an nbformat NotebookNode), validated."""
    nb = nbformat.read(path, as_version=4)
    resources = {"metadata": {"path": str(path.parent)}}
    steps = [
        TagRemovePreprocessor(remove_cell_tags={SOLUTION_TAG}),
        ClearExerciseOutputs(),
        DropSolutionPointers(),
        PointLaunchCellsAt(branch=branch, repo=repo or repository_url()),
    ]
    for step in steps:
        nb, resources = step.preprocess(nb, resources)
    nbformat.validate(nb)
    return nb


def _prepare(out):
    out = out.resolve()
    if out == ROOT or out in ROOT.parents:
        raise SystemExit(f"refusing to write the release over the repository ({out})")
    if out.exists():
        content = [p for p in out.iterdir() if p.name != ".git"]
        if content and not (out / MARKER).exists():
            raise SystemExit(f"{out} is not empty and holds no earlier release ({MARKER}); choose another --out")
        for p in content:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def make_release(out=DEFAULT_OUT, branch="", repo="", zip_it=False, quiet=False):
    """Write the release into ``out``; return its path (and write ``out``.zip with ``zip_it``)."""
    repo = (repo or repository_url()).rstrip("/")
    out = _prepare(Path(out))
    for pattern in STUDENT_FILES:
        for source in sorted(ROOT.glob(pattern)):
            if source.is_file():
                target = out / source.relative_to(ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    readme = out / "README.md"
    if branch and readme.exists():
        readme.write_text(point_links_at(readme.read_text(), repo, branch))
    series = notebooks()
    (out / "notebooks").mkdir(exist_ok=True)
    for path in series:
        source = nbformat.read(path, as_version=4)
        nb = release_notebook(path, branch, repo)
        nbformat.write(nb, out / "notebooks" / path.name)
        if not quiet:
            removed = sum(SOLUTION_TAG in tags(c) for c in source.cells)
            cleared = sum(EXERCISE_TAG in tags(c) and c.cell_type == "code" for c in source.cells)
            print(f"{path.name}: {removed} solution cells removed, {cleared} exercise cells cleared")
    (out / MARKER).write_text(
        "Written by scripts/make_student_release.py; this folder is replaced on each run (except .git).\n"
        f"branch: {branch or '(hand-out, not published)'}\nrepository: {repo}\n")
    if zip_it:
        archive = shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)
        if not quiet:
            print(f"wrote {archive}")
    if not quiet:
        print(f"wrote {out} ({len(series)} notebooks{', for branch ' + branch if branch else ''})")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"release folder (default {DEFAULT_OUT.relative_to(ROOT)})")
    parser.add_argument("--zip", action="store_true", help="also write OUT.zip")
    parser.add_argument("--branch", default="", help="publish as this branch: badges and the Colab set-up cell point at it")
    parser.add_argument("--repo", default="", help="GitHub URL of the repository holding the branch (default: pyproject's)")
    args = parser.parse_args(argv)
    if args.repo and not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", args.repo.rstrip("/")):
        parser.error("--repo must look like https://github.com/OWNER/REPO")
    if args.branch and not re.fullmatch(r"[\w.-]+(/[\w.-]+)*", args.branch):
        parser.error("--branch must be a plain branch name")
    make_release(args.out, args.branch, args.repo, args.zip)


if __name__ == "__main__":
    main()
