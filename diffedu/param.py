"""eps <-> x0 <-> v <-> score: the only place where one prediction is turned into another.

All follow from x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps  [DDPM eq. 4], the
velocity v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x_0  [Salimans & Ho §4], and
Tweedie's formula score = grad log q(x_t) = -E[eps | x_t] / sqrt(1 - alpha_bar)  [Song eq. 9,
DDIM eq. 10].  Every function is plain arithmetic, so `alpha_bar` may be a float, a tensor that
broadcasts against x_t (shape (B, 1, ..., 1) for one time per sample) or a sympy symbol.

Imports: _ops.  Layer core.
"""
from __future__ import annotations

from ._ops import sqrt


def x0_from_eps(x_t, eps, alpha_bar):
    """x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar).  [DDPM eq. 15, DDIM eq. 9]"""
    return (x_t - sqrt(1 - alpha_bar) * eps) / sqrt(alpha_bar)


def eps_from_x0(x_t, x0, alpha_bar):
    """eps = (x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar).  [DDPM eq. 4 solved for eps]"""
    return (x_t - sqrt(alpha_bar) * x0) / sqrt(1 - alpha_bar)


def v_from_eps(x_t, eps, alpha_bar):
    """v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0, with x0 from (x_t, eps).  [Salimans & Ho §4]"""
    return sqrt(alpha_bar) * eps - sqrt(1 - alpha_bar) * x0_from_eps(x_t, eps, alpha_bar)


def x0_from_v(x_t, v, alpha_bar):
    """x0 = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v.  [Salimans & Ho §4]"""
    return sqrt(alpha_bar) * x_t - sqrt(1 - alpha_bar) * v


def eps_from_v(x_t, v, alpha_bar):
    """eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v.  [Salimans & Ho §4]"""
    return sqrt(1 - alpha_bar) * x_t + sqrt(alpha_bar) * v


def score_from_eps(eps, alpha_bar):
    """score = -eps / sqrt(1 - alpha_bar).  [Song eq. 9; DDIM §4.3]"""
    return -eps / sqrt(1 - alpha_bar)


def eps_from_score(score, alpha_bar):
    """eps = -sqrt(1 - alpha_bar) score.  [inverse of score_from_eps]"""
    return -sqrt(1 - alpha_bar) * score


def x0_from_score(x_t, score, alpha_bar):
    """x0 = (x_t + (1 - alpha_bar) score) / sqrt(alpha_bar).  [Tweedie's formula]"""
    return (x_t + (1 - alpha_bar) * score) / sqrt(alpha_bar)
