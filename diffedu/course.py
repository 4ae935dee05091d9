"""The course itself as package data: the notebooks and the measured tables they read.

In a clone (or an editable install) they are the repository's `notebooks/*.ipynb` and
`benchmarks/results/*.md`; in a wheel the build copies them into `diffedu/course/` (setup.py), so that
`pip install diffedu` is enough to take the course:

    diffedu notebooks ~/course && jupyter lab ~/course

    results_table(name)   the text of a measured table, e.g. results_table("fid_table") (what notebooks read)
    notebooks()           the course's notebooks, in order
    copy_notebooks(dir)   copy them into dir; refuses to overwrite one unless overwrite=True
    install_kernel()      the kernelspec the notebooks name ("diffedu", "Python 3 (diffedu)"), for this Python

Imports: importlib.resources, shutil, sys; ipykernel inside install_kernel (no diffedu module).
"""
from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KERNEL, KERNEL_TITLE = "diffedu", "Python 3 (diffedu)"     # the kernelspec every notebook's metadata names


def _root() -> tuple[Path, Path]:
    """(the folder of the notebooks, the folder of the tables): the wheel's copy, else the repository's."""
    packaged = Path(str(resources.files("diffedu") / "course"))
    if (packaged / "notebooks").is_dir():
        return packaged / "notebooks", packaged / "results"
    if (REPO / "notebooks").is_dir():
        return REPO / "notebooks", REPO / "benchmarks" / "results"
    raise FileNotFoundError(f"the course's notebooks are in neither {packaged / 'notebooks'} (an installed wheel) nor "
                            f"{REPO / 'notebooks'} (a clone); reinstall diffedu")


def results_table(name: str) -> str:
    """The text of the measured table `name` (with or without .md), as `benchmarks/<script>.py` wrote it."""
    folder = _root()[1]
    path = folder / (name if name.endswith(".md") else name + ".md")
    if not path.is_file():
        have = sorted(p.stem for p in folder.glob("*.md"))
        raise ValueError(f"no results table {name!r}; there are: {', '.join(have) or 'none'} (in {folder})")
    return path.read_text(encoding="utf-8")


def notebooks() -> list[Path]:
    """The course's notebooks (NN_name.ipynb), in order."""
    return sorted(_root()[0].glob("[0-9][0-9]_*.ipynb"))


def copy_notebooks(directory, overwrite: bool = False) -> list[Path]:
    """Copy the course's notebooks into `directory` (made if missing); returns the paths written.

    Nothing is written when any of them exists there already, unless overwrite=True: a learner's answers
    live in those files."""
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} exists and is not a folder; give a folder for the notebooks")
    sources = notebooks()
    if not sources:
        raise FileNotFoundError(f"no notebooks found in {_root()[0]}; reinstall diffedu")
    targets = [directory / src.name for src in sources]
    existing = [t.name for t in targets if t.exists()]
    if existing and not overwrite:
        raise ValueError(f"{directory} already holds {', '.join(existing)}: your work would be lost; "
                         "choose another folder, or pass --overwrite to replace them")
    directory.mkdir(parents=True, exist_ok=True)
    for src, dst in zip(sources, targets):
        shutil.copyfile(src, dst)
    return targets


def install_kernel(prefix=None) -> Path:
    """Install the kernelspec the notebooks name, running this Python, under `prefix` (default: this environment,
    sys.prefix); returns its folder.  ImportError without ipykernel (`pip install "diffedu[course]"`)."""
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=KERNEL, display_name=KERNEL_TITLE, prefix=str(prefix or sys.prefix)))
