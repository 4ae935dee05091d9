"""The course's exercises: each checker accepts its solution, refuses None and a nearby wrong answer,
and says where a wrong answer differs; a crashing or malformed answer is feedback, not an exception."""
import pytest
import sympy as sp
import torch

from diffedu import symbolic as S
from diffedu.exercises import EXERCISES, KINDS, Exercise
from diffedu.exercises._core import code, numeric

IDS = sorted(EXERCISES)


def nearby(ex: Exercise):
    """A wrong answer close to the solution: off by 0.1% (symbolic, numeric) or in one entry (code)."""
    sol = ex.solution()
    if ex.kind == "symbolic":
        return sol * sp.Rational(1001, 1000)
    if ex.kind == "numeric":
        return float(sol) * 1.001

    def off(*args, **kwargs):
        out = sol(*args, **kwargs)
        if not isinstance(out, torch.Tensor):        # a count, a number
            return out + 1
        out = out.clone()
        out.view(-1)[-1] += 1e-3
        return out
    return off


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_solution_is_accepted(exercise_id):
    ex = EXERCISES[exercise_id]
    fb = ex.check(ex.solution())
    assert fb and fb.ok, str(fb)
    assert ex.kind in KINDS and ex.id == exercise_id and ex.prompt


@pytest.mark.parametrize("exercise_id", IDS)
def test_none_is_not_attempted_and_a_nearby_answer_is_refused_with_where(exercise_id):
    ex = EXERCISES[exercise_id]
    fb = ex.check(None)
    assert not fb and "not attempted yet" in fb.message
    fb = ex.check(nearby(ex))
    assert not fb and fb.hint and fb.hint in str(fb)
    if ex.kind == "code":
        assert ("index" in fb.message and "yours" in fb.message or "off by" in fb.message) and "inputs:" in fb.message
    if ex.kind == "symbolic":
        assert "yours" in fb.message and "At " in fb.message


def test_a_crashing_wrong_shaped_or_wrong_typed_answer_is_feedback():
    ex = EXERCISES["06.guided_eps"]

    def crash(eps_cond, eps_uncond, w):
        raise RuntimeError("boom")
    fb = ex.check(crash)
    assert not fb and "raised RuntimeError: boom" in fb.message and "eps_cond shape" in fb.message
    fb = ex.check(lambda eps_cond, eps_uncond, w: eps_cond[0])
    assert not fb and "your result has shape" in fb.message
    assert "expected a function, got int" in ex.check(3).message
    assert "expected a sympy expression" in EXERCISES["02.ddim_sigma"].check("eta").message


def test_the_first_disagreeing_entry_is_named():
    ex = Exercise("99.double", "code", "double x", code(lambda g: dict(x=torch.arange(6.0).reshape(2, 3))),
                  lambda: (lambda x: 2 * x))

    def almost(x):
        y = 2 * x
        y[1, 1] = 0
        return y
    fb = ex.check(almost)
    assert not fb and "1 of 6 entries differ; the first at index [1, 1]: yours 0, the reference 8" in fb.message


def test_an_answer_that_writes_into_its_inputs_does_not_change_the_reference():
    ex = Exercise("99.double", "code", "double x", code(lambda g: dict(x=torch.ones(3))), lambda: (lambda x: 2 * x))

    def in_place(x):
        return x.mul_(2)
    assert ex.check(in_place)


def test_numeric_feedback_says_how_far_and_which_way():
    ex = Exercise("99.half", "numeric", "half", numeric(rtol=1e-3), lambda: 0.5)
    assert ex.check(0.5) and ex.check(0.50049)
    fb = ex.check(0.55)
    assert not fb and "10.0% too large" in fb.message
    assert "too small" in ex.check(0.4).message and "not a finite value" in ex.check(float("nan")).message
    assert "expected a number" in ex.check("0.5").message and "expected a number" in ex.check(True).message


def test_a_symbolic_answer_in_other_but_equal_symbols_is_accepted():
    s = S.symbols()
    ex = EXERCISES["01.posterior_variance"]
    beta_tilde = (1 - s.alpha_bar_prev) / (1 - s.alpha_bar_t) * s.beta_t     # written with beta_t
    assert ex.check(beta_tilde)
    assert not ex.check(s.beta_t)                    # the other DDPM choice of variance is not beta_tilde


def test_ids_and_kinds_are_checked():
    with pytest.raises(ValueError, match="kind must be one of"):
        Exercise("01.x", "essay", "p", numeric(), lambda: 1)
    with pytest.raises(ValueError, match="'NN.name'"):
        Exercise("x", "numeric", "p", numeric(), lambda: 1)
    assert {ex.notebook for ex in EXERCISES.values()} <= {1, 2, 3, 4, 5, 6}


def test_every_notebook_has_at_least_four_exercises_one_of_them_code():
    by_notebook = {}
    for ex in EXERCISES.values():
        by_notebook.setdefault(ex.notebook, []).append(ex.kind)
    assert sorted(by_notebook) == [1, 2, 3, 4, 5, 6] and len(EXERCISES) >= 20
    for nb, kinds in by_notebook.items():
        assert len(kinds) >= 4 and "code" in kinds, (nb, kinds)


def test_a_training_step_without_zero_grad_is_refused_at_the_weights():
    """05.train_step: right losses, but gradients that accumulate across steps give other weights: the
    feedback names the step and the first weight tensor that differs."""
    ex = EXERCISES["05.train_step"]

    def accumulates(eps_model, optimizer, alpha_bar, x0, t, eps):
        ab = alpha_bar[t].view(-1, 1, 1, 1)
        loss = ((eps - eps_model(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, t)) ** 2).mean()
        loss.backward()                                   # no optimizer.zero_grad()
        optimizer.step()
        return loss.item()

    fb = ex.check(accumulates)
    assert not fb and "the loss of step 2 is right, but after it the weights" in fb.message and "differ" in fb.message


def test_a_right_training_step_written_another_way_is_accepted():
    """05.train_step: x_t from the formula (not q_sample), the mean squared error by hand, zero_grad after the
    loss: the same step up to round-off, so the same weights (Adam's sign-like first step once turned that
    round-off into a refusal)."""
    def mine(eps_model, optimizer, alpha_bar, x0, t, eps):
        ab = alpha_bar[t].view(-1, 1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = (eps - eps_model(x_t, t)).pow(2).sum() / eps.numel()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss

    fb = EXERCISES["05.train_step"].check(mine)
    assert fb, fb.message
