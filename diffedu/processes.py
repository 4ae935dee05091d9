"""Continuous Gaussian forward processes: p(x_t | x_0) = N(s(t) x_0, s(t)^2 sigma(t)^2 I).  [EDM eq. 10-11]

Every Gaussian diffusion is a pair of scalar functions s(t) (the signal scale) and sigma(t) (the
noise level of x_t / s(t)).  Its SDE dx = f(t) x dt + g(t) dw has

    f(t) = s'(t) / s(t),        g(t) = s(t) sqrt(2 sigma(t) sigma'(t))          [EDM eq. 28, 34]

and, backwards, s(t) = exp(int_0^t f), sigma(t)^2 = int_0^t g^2 / s^2 (derived in
`diffedu.symbolic.processes`).  The four families of the course, with EDM Table 1's values:

    VP (DDPM, continuous)  s = 1/sqrt(e^{beta_d t^2/2 + beta_min t}),  sigma = sqrt(e^{beta_d t^2/2 + beta_min t} - 1)
    VE (SMLD)              s = 1,   sigma = sqrt(t)
    EDM                    s = 1,   sigma = t
    FlowMatching           s = 1 - t,   sigma = t / (1 - t)        (x_t = (1 - t) x_0 + t eps)

The methods are plain arithmetic: t may be a float, a tensor or a sympy symbol, so the symbolic
layer differentiates the very functions below.

Imports: _checks, _ops.  Layer core.
"""
from __future__ import annotations

from ._checks import check_number
from ._ops import _is_sympy, exp, log, sqrt


def _constant(value, name: str, lo: float):
    """A process constant: a number > lo, or a sympy symbol or an array of values (so that
    `diffedu.symbolic` can pass symbols, and its float checks arrays of random constants)."""
    if _is_sympy(value) or hasattr(value, "shape"):
        return value
    return check_number(value, name, lo=lo, lo_open=True)


class Process:
    """s(t), sigma(t), their derivatives, the SDE's f(t), g(t), and sigma's inverse."""

    t_min: float = 0.0
    t_max: float = 1.0

    def s(self, t):
        raise NotImplementedError

    def sigma(self, t):
        raise NotImplementedError

    def s_dot(self, t):
        raise NotImplementedError

    def sigma_dot(self, t):
        raise NotImplementedError

    def sigma_inv(self, sigma):
        """The time t at which the noise level is sigma."""
        raise NotImplementedError

    def f(self, t):
        """Drift coefficient f(t) = s'(t) / s(t).  [EDM eq. 28]"""
        return self.s_dot(t) / self.s(t)

    def g(self, t):
        """Diffusion coefficient g(t) = s(t) sqrt(2 sigma(t) sigma'(t)).  [EDM eq. 34]"""
        return self.s(t) * sqrt(2 * self.sigma(t) * self.sigma_dot(t))

    def ode_coefs(self, t):
        """(a, b) of the PF-ODE dx/dt = a x - b D(x/s; sigma), with a = sigma'/sigma + s'/s, b = sigma' s / sigma.  [EDM eq. 4]"""
        s, sigma, s_dot, sigma_dot = self.s(t), self.sigma(t), self.s_dot(t), self.sigma_dot(t)
        return sigma_dot / sigma + s_dot / s, sigma_dot * s / sigma

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items() if not k.startswith("t_"))
        return f"{type(self).__name__}({args})"


class VP(Process):
    """Variance preserving, the continuous DDPM: alpha_bar(t) = e^{-(beta_d t^2/2 + beta_min t)}.  [EDM Tab. 1; Song eq. 33]

    s(t) = sqrt(alpha_bar(t)), sigma(t) = sqrt(1/alpha_bar(t) - 1), t in [1e-3, 1].
    """

    t_min, t_max = 1e-3, 1.0

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        self.beta_min = _constant(beta_min, "beta_min", 0)
        self.beta_max = _constant(beta_max, "beta_max", self.beta_min if isinstance(self.beta_min, float) else 0)

    @property
    def beta_d(self) -> float:
        return self.beta_max - self.beta_min

    def _exponent(self, t):
        """beta_d t^2 / 2 + beta_min t = int_0^t beta(r) dr with beta(r) = beta_min + beta_d r."""
        return self.beta_d * t**2 / 2 + self.beta_min * t

    def s(self, t):
        return 1 / sqrt(exp(self._exponent(t)))

    def sigma(self, t):
        return sqrt(exp(self._exponent(t)) - 1)

    def s_dot(self, t):
        return -(self.beta_d * t + self.beta_min) / 2 * self.s(t)

    def sigma_dot(self, t):
        return (self.beta_d * t + self.beta_min) * exp(self._exponent(t)) / (2 * self.sigma(t))

    def sigma_inv(self, sigma):
        """t = (sqrt(beta_min^2 + 2 beta_d log(sigma^2 + 1)) - beta_min) / beta_d.  [EDM Tab. 1]"""
        return (sqrt(self.beta_min**2 + 2 * self.beta_d * log(sigma**2 + 1)) - self.beta_min) / self.beta_d


class VE(Process):
    """Variance exploding (SMLD): s = 1, sigma(t) = sqrt(t), t in [sigma_min^2, sigma_max^2].  [EDM Tab. 1]"""

    def __init__(self, sigma_min: float = 0.02, sigma_max: float = 100.0):
        self.sigma_min = _constant(sigma_min, "sigma_min", 0)
        self.sigma_max = _constant(sigma_max, "sigma_max", self.sigma_min if isinstance(self.sigma_min, float) else 0)
        self.t_min, self.t_max = self.sigma_min**2, self.sigma_max**2

    def s(self, t):
        return 1 + 0 * t

    def sigma(self, t):
        return sqrt(t)

    def s_dot(self, t):
        return 0 * t

    def sigma_dot(self, t):
        return 1 / (2 * sqrt(t))

    def sigma_inv(self, sigma):
        return sigma**2


class EDM(Process):
    """Karras et al.'s choice: s = 1, sigma(t) = t, so the PF-ODE is dx/dsigma = (x - D(x; sigma)) / sigma.  [EDM Tab. 1]"""

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0):
        self.sigma_min = _constant(sigma_min, "sigma_min", 0)
        self.sigma_max = _constant(sigma_max, "sigma_max", self.sigma_min if isinstance(self.sigma_min, float) else 0)
        self.t_min, self.t_max = self.sigma_min, self.sigma_max

    def s(self, t):
        return 1 + 0 * t

    def sigma(self, t):
        return t

    def s_dot(self, t):
        return 0 * t

    def sigma_dot(self, t):
        return 1 + 0 * t

    def sigma_inv(self, sigma):
        return sigma


class FlowMatching(Process):
    """Rectified flow / flow matching: x_t = (1 - t) x_0 + t eps, so s = 1 - t, sigma = t / (1 - t).  [EDM notes §1.1]"""

    t_min, t_max = 1e-3, 1 - 1e-3

    def s(self, t):
        return 1 - t

    def sigma(self, t):
        return t / (1 - t)

    def s_dot(self, t):
        return -1 + 0 * t

    def sigma_dot(self, t):
        return 1 / (1 - t) ** 2

    def sigma_inv(self, sigma):
        return sigma / (1 + sigma)
