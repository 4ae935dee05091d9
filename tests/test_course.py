"""diffedu.course and `diffedu notebooks DIR`: the course's notebooks copied into a learner's folder (never over
their work unless asked), and the measured tables the notebooks read, found without ../benchmarks."""
import json
import re
import sys
from pathlib import Path

import pytest

from diffedu import course
from diffedu.__main__ import main

REPO = Path(__file__).resolve().parents[1]


def test_notebooks_are_the_repository_s_six_in_order():
    names = [p.name for p in course.notebooks()]
    assert names == sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")) and len(names) == 6


def test_copy_refuses_to_overwrite_a_learner_s_notebook_unless_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("diffedu.__main__.install_kernel", lambda: tmp_path / "kernels" / "diffedu")
    out = tmp_path / "course"
    assert main(["notebooks", str(out)]) == 0
    copied = sorted(p.name for p in out.glob("*.ipynb"))
    assert copied == [p.name for p in course.notebooks()]
    assert f"jupyter lab {out}" in capsys.readouterr().out
    mine = out / copied[0]
    mine.write_text("my answers")
    assert main(["notebooks", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds" in err and copied[0] in err and "--overwrite" in err
    assert mine.read_text() == "my answers"
    assert main(["notebooks", str(out), "--overwrite"]) == 0
    assert json.loads(mine.read_text())["cells"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        course.copy_notebooks(tmp_path / "file")


def test_every_table_a_notebook_reads_is_found_by_results_table():
    names = set()
    for src in (REPO / "notebooks" / "src").glob("*.py"):
        text = src.read_text()
        assert "../benchmarks/results" not in text, f"{src.name} reads a table by a relative path"
        names |= set(re.findall(r'results_table\("(\w+)"\)', text))
    assert {"fid_table", "mnist_table", "churn", "ode_convergence"} <= names
    for name in names:
        assert course.results_table(name) == (REPO / "benchmarks" / "results" / f"{name}.md").read_text()
    with pytest.raises(ValueError, match="no results table 'nope'; there are: .*fid_table"):
        course.results_table("nope")


def test_the_kernel_the_notebooks_name_is_the_one_installed(tmp_path):
    """Every notebook's metadata names the kernelspec `install_kernel` writes (and `make install` installs), and
    that kernelspec runs this Python."""
    for nb in course.notebooks():
        spec = json.loads(nb.read_text())["metadata"]["kernelspec"]
        assert spec["name"] == course.KERNEL and spec["display_name"] == course.KERNEL_TITLE, nb.name
    folder = course.install_kernel(prefix=tmp_path)
    assert folder == tmp_path / "share" / "jupyter" / "kernels" / course.KERNEL
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["display_name"] == course.KERNEL_TITLE and spec["argv"][0] == sys.executable
