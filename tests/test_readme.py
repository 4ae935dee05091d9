"""The README's quick start runs and prints exactly what the README shows."""
import contextlib
import io
import pathlib
import re

import torch

README = pathlib.Path(__file__).parents[1] / "README.md"


def quick_start_blocks():
    text = README.read_text()
    section = text[text.index("## Quick start"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    return code, shown


def test_quick_start_is_three_lines_and_reproduces_its_output():
    code, shown = quick_start_blocks()
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 4, "the quick start promises three lines (plus the print)"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README quick start", "exec"), {})
    assert out.getvalue() == shown


def test_quick_start_radii_quoted_in_readme():
    code, _ = quick_start_blocks()
    ns = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "README quick start", "exec"), ns)
    radii = ns["traj"].x.norm(dim=1)
    quoted = re.search(r"\(radius ([\d., ]+)\)", README.read_text()).group(1)
    assert [f"{r:.2f}" for r in radii.tolist()] == [q.strip() for q in quoted.split(",")]
    assert torch.allclose(radii, torch.full_like(radii, 2.0), atol=0.15)


def test_every_python_block_in_the_readme_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    for code in blocks:
        ns = {}
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, "README", "exec"), ns)
    assert ns["x"].shape == (64, 1, 8, 8)        # the last block: 64 digits from the shipped UNet
