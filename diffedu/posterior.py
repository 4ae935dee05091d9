"""The DDPM posterior q(x_{t-1} | x_t, x_0) and DDIM's family q_sigma(x_prev | x_t, x_0).

Every function takes the two cumulative products that define a step, alpha_bar = alpha_bar_t
and alpha_bar_prev = alpha_bar_{t-1} (or alpha_bar of any earlier time, when steps are
skipped), so the same code serves the full chain and a sub-sequence tau.  For one DDPM step
alpha_t = alpha_bar_t / alpha_bar_{t-1} and beta_t = 1 - alpha_t.

These are plain arithmetic: they accept floats, tensors and sympy symbols, and
`diffedu.symbolic` checks each one against its derivation.

Imports: _ops.  Layer core.
"""
from __future__ import annotations

from ._ops import sqrt


def posterior_mean_coefs(alpha_bar, alpha_bar_prev):
    """(coef_x0, coef_xt) of mu_tilde = coef_x0 x_0 + coef_xt x_t.  [DDPM eq. 7]

    coef_x0 = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t),
    coef_xt = sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t).
    """
    alpha = alpha_bar / alpha_bar_prev
    beta = 1 - alpha
    coef_x0 = sqrt(alpha_bar_prev) * beta / (1 - alpha_bar)
    coef_xt = sqrt(alpha) * (1 - alpha_bar_prev) / (1 - alpha_bar)
    return coef_x0, coef_xt


def posterior_variance(alpha_bar, alpha_bar_prev):
    """beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t.  [DDPM eq. 7]"""
    beta = 1 - alpha_bar / alpha_bar_prev
    return (1 - alpha_bar_prev) / (1 - alpha_bar) * beta


def posterior_mean_eps_coefs(alpha_bar, alpha_bar_prev):
    """(coef_xt, coef_eps) of mu = coef_xt x_t - coef_eps eps.  [DDPM eq. 11]

    mu_theta(x_t, t) = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - alpha_bar_t) eps_theta(x_t, t)).
    """
    alpha = alpha_bar / alpha_bar_prev
    beta = 1 - alpha
    return 1 / sqrt(alpha), beta / (sqrt(alpha) * sqrt(1 - alpha_bar))


def vlb_weight(alpha_bar, alpha_bar_prev, sigma2):
    """Weight of ||eps - eps_theta||^2 in L_{t-1}: beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)).  [DDPM eq. 12]"""
    alpha = alpha_bar / alpha_bar_prev
    beta = 1 - alpha
    return beta**2 / (2 * sigma2 * alpha * (1 - alpha_bar))


def ddim_sigma(alpha_bar, alpha_bar_prev, eta):
    """sigma_t(eta) = eta sqrt((1 - alpha_bar_prev)/(1 - alpha_bar_t)) sqrt(1 - alpha_bar_t/alpha_bar_prev).  [DDIM eq. 16]

    eta = 1 gives sigma^2 = beta_tilde (DDPM); eta = 0 the deterministic DDIM.
    """
    return eta * sqrt((1 - alpha_bar_prev) / (1 - alpha_bar)) * sqrt(1 - alpha_bar / alpha_bar_prev)


def ddim_max_eta(alpha_bar, alpha_bar_prev):
    """The largest eta with sigma_t(eta)^2 <= 1 - alpha_bar_prev: sqrt((1 - alpha_bar_t) / (1 - alpha_bar_t/alpha_bar_prev)).  [DDIM eq. 12, 16]

    Past it the coefficient sqrt(1 - alpha_bar_prev - sigma^2) of eps_hat in DDIM's update is not
    real.  For alpha_bar_prev < 1 (at alpha_bar_prev = 1, sigma is 0 for every eta).
    """
    return sqrt((1 - alpha_bar) / (1 - alpha_bar / alpha_bar_prev))


def ddim_mean_coefs(alpha_bar, alpha_bar_prev, sigma):
    """(k, m) of the mean k x_0 + m x_t of q_sigma(x_prev | x_t, x_0).  [DDIM eq. 7]

    Solved from the marginal-matching equations k + m sqrt(alpha_bar_t) = sqrt(alpha_bar_prev),
    m^2 (1 - alpha_bar_t) + sigma^2 = 1 - alpha_bar_prev (see diffedu.symbolic.ddim).
    """
    m = sqrt(1 - alpha_bar_prev - sigma**2) / sqrt(1 - alpha_bar)
    k = sqrt(alpha_bar_prev) - m * sqrt(alpha_bar)
    return k, m


def ddim_step_coefs(alpha_bar, alpha_bar_prev, sigma):
    """(coef_x0, coef_eps) of x_prev = coef_x0 x0_hat + coef_eps eps_hat + sigma z.  [DDIM eq. 12]"""
    return sqrt(alpha_bar_prev), sqrt(1 - alpha_bar_prev - sigma**2)
