"""Every exercise stands in its notebook *before* the cell that shows its answer, and starts unanswered.

For each notebook source (notebooks/src/NN_*.py): every exercise of EXERCISES with that NN has exactly one
check cell and one reveal cell after it; the check cell comes before the first cell that shows the answer
(SHOWN_BY: the derivation or code that displays it; None for a number shown nowhere else); and in the built notebook (notebooks/NN_*.ipynb) no
output before a numeric exercise prints its answer (at 3, 4 or 6 significant digits), and each check cell's
stored output says "not attempted yet".
"""
import json
import math
import re
from pathlib import Path

import pytest

from diffedu.exercises import EXERCISES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# the first cell that shows each answer (a derivation, the package's source, a printed table)
SHOWN_BY = {
    "01.q_sample": "S.merge_gaussians()",
    "01.posterior_variance": "S.ddpm_posterior()",
    "01.ddpm_step": "d.sample_ddpm(",
    "01.reverse_variance_of_gaussian_data": None,     # a number shown nowhere else (the .ipynb test checks)
    "02.ddim_k": "S.ddim_coefficients()",
    "02.ddim_m": "S.ddim_coefficients()",
    "02.ddim_sigma": "S.ddim_coefficients()",
    "02.ddim_step": "S.ddim_coefficients()",
    "03.deterministic_correction": "inspect.getsource(d.sample_estimate_correct)",
    "03.partial_noise": "inspect.getsource(d.sample_estimate_correct)",
    "03.sigma_tilde_of_ddpm": "ddim_sigma_from_sigma_tilde(",
    "03.sigma_tilde_for_eta": "d.sigma_tilde_for_eta(",
    "04.flow_matching_g2": "sym_proc.sde_from_s_sigma()",
    "04.x0_from_eps": "d.x0_from_eps(",
    "04.euler_step": "sym_proc.ddim_is_euler()",
    "04.karras_sigmas": "d.karras_sigmas(18, rho=rho)",
    "04.heun_step": 'd.sample_edm(mix.denoiser, d.karras_sigmas(4096), x80, "heun")',
    "04.heun_calls": "traj.nfe",
    "05.l_simple": "EXERCISES[\"05.train_step\"]",
    "05.train_step": "train(",
    "05.heun_nfe": "generate(unet",
    "05.ddpm_calls_for_a_grid": "generate(unet",
    "05.frechet_distance": "evaluate_sampler(",
    "06.guided_eps": 'DERIVATIONS["classifier_free_guidance"]',
    "06.guided_score": 'DERIVATIONS["classifier_free_guidance"]',
    "06.implicit_classifier": 'DERIVATIONS["classifier_free_guidance"]',
    "06.guided_calls": "Guided(unet.model",
}


def cells(path: Path) -> list[str]:
    """The cells of a jupytext percent file, each with its `# %%` header line."""
    return re.split(r"(?m)^(?=# %%)", path.read_text())[1:]


def source(nn: str) -> Path:
    (path,) = (NOTEBOOKS / "src").glob(f"{nn}_*.py")
    return path


def first(cs: list[str], needle: str) -> int:
    hits = [i for i, c in enumerate(cs) if needle in c]
    return hits[0] if hits else -1


@pytest.mark.parametrize("exercise_id", sorted(EXERCISES))
def test_the_exercise_comes_before_the_cell_that_shows_its_answer(exercise_id):
    cs = cells(source(exercise_id[:2]))
    checks = [i for i, c in enumerate(cs) if f'EXERCISES["{exercise_id}"].check(' in c]
    reveals = [i for i, c in enumerate(cs) if f'EXERCISES["{exercise_id}"].reveal()' in c]
    # the exercise's own check cell, then its reveal; a later cell may check again to use the learner's answer
    assert checks and len(reveals) == 1 and reveals[0] > checks[0], (checks, reveals)
    assert all(i > reveals[0] for i in checks[1:]), f"a second check of {exercise_id} before its reveal: {checks}"
    assert "source_hidden" in cs[reveals[0]].splitlines()[0], "the reveal cell must start collapsed"
    assert exercise_id in SHOWN_BY, f"say in SHOWN_BY which cell of notebook {exercise_id[:2]} shows the answer"
    if SHOWN_BY[exercise_id] is None:
        assert EXERCISES[exercise_id].kind == "numeric", "only a numeric answer may be shown nowhere: its number is checked"
        return
    shown = first(cs, SHOWN_BY[exercise_id])
    assert shown >= 0, f"no cell contains {SHOWN_BY[exercise_id]!r}"
    assert checks[0] < shown, (f"{exercise_id} is asked in cell {checks[0]}, after cell {shown} shows the answer "
                               f"({SHOWN_BY[exercise_id]!r})")


def outputs(cell: dict) -> str:
    text = []
    for out in cell.get("outputs", []):
        for key in ("text/plain", "text/markdown", "text/latex", "text/html"):
            value = out.get("data", {}).get(key)
            if value:
                text.append("".join(value))
        if "text" in out:
            text.append("".join(out["text"]))
    return "\n".join(text)


def forms(x: float) -> set[str]:
    """How a notebook would print the number x."""
    out = {f"{x:.3g}", f"{x:.4g}", f"{x:.6g}", f"{x:.4f}"}
    if float(x).is_integer():
        out.add(str(int(x)))
    return {f for f in out if len(f.strip("-0.")) >= 2}       # "0.1" or "2" would match anywhere


@pytest.mark.parametrize("nn", sorted({ex_id[:2] for ex_id in EXERCISES}))
def test_the_built_notebook_starts_unanswered_and_prints_no_numeric_answer_early(nn):
    (path,) = NOTEBOOKS.glob(f"{nn}_*.ipynb")
    nb = json.loads(path.read_text())["cells"]
    seen, asked = [], set()                             # outputs of the cells so far; exercises met
    for cell in nb:
        src = "".join(cell["source"])
        for ex_id in re.findall(r'EXERCISES\["([^"]+)"\]\.check\(', src):
            if ex_id in asked:                          # a later cell using the learner's answer
                continue
            asked.add(ex_id)
            assert "not attempted yet" in outputs(cell), f"{ex_id}: the built notebook must store the unanswered check"
            ex = EXERCISES[ex_id]
            if ex.kind == "numeric" and math.isfinite(float(ex.solution())):
                before = "\n".join(seen)
                for form in forms(float(ex.solution())):
                    assert not re.search(rf"(?<![\d.]){re.escape(form)}(?!\d)", before), \
                        f"{ex_id}: its answer {form} is printed before the exercise"
        if cell["cell_type"] == "code":
            seen.append(outputs(cell))
