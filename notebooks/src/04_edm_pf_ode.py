# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (diffedu)
#     language: python
#     name: diffedu
# ---

# %% [markdown]
# # 04 · EDM: one ODE for every Gaussian diffusion
#
# **The question.** DDPM, score-based SDEs and flow matching each come with their own sampler.
# Are they different methods, or one method in different coordinates?
#
# **By the end you can** write any Gaussian forward process as a pair $s(t), \sigma(t)$, derive
# its SDE coefficients $f, g$ and its probability-flow ODE, prove that DDIM is Euler's method on
# that ODE, measure the convergence order of Euler and Heun, and explain EDM's preconditioning.
#
# Everything here runs on the **exact** denoiser of a Gaussian mixture, so the only error you see
# is the sampler's own.
#
# **Sources.** The first half follows the EDM notes ([EDM notes], Chinese course notes on Karras et
# al.) section by section and fills in the steps they skip; the paper is [EDM] (equation numbers of
# arXiv 2206.00364).
#
# | here | [EDM notes] | [EDM] |
# | --- | --- | --- |
# | 1. s(t), σ(t) and the SDE's f, g | §1.1 扩散模型的通用加噪公式 (the general noising formula) | App. B.2, eq. 28, 34; Tab. 1 |
# | 2. the PF-ODE with s and σ alone | §1.2 一步写出 PF-ODE (writing the PF-ODE in one step) | eq. 1, 4 |
# | 3. the denoiser, its loss and the score | §1.3 通用确定性采样 (general deterministic sampling) | eq. 2, 3 |
# | 4. DDIM is Euler | – | §3, Alg. 1 |
# | 5-7. Euler/Heun, Karras steps, churn, preconditioning | – | eq. 5, Alg. 1-2, App. B.6, Tab. 1 |
#
# Two lines of the notes are wrong and are corrected in marked **Erratum** boxes below.
#
# **Exercises** stand where their answer is needed, *before* the notebook shows it. Each answer
# cell starts unanswered (`None`) and its check says so. Write your answer and run the cell: the
# check says whether you are right and, if not, where your answer differs (the symbol values, the
# input, the first entry that disagrees), with a hint. The collapsed cell under each exercise shows
# the reference: open it after you have tried. Every later cell runs whether or not you answered.

# %%
import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
import torch

import diffedu as d
from diffedu.course import results_table
from diffedu.symbolic import fokker_planck as sym_fp
from diffedu.symbolic import precond as sym_precond
from diffedu.symbolic import processes as sym_proc
from diffedu.symbolic import score as sym_score
from diffedu.symbolic import symbols
from diffedu.widgets import PFODEExplorer
from IPython.display import Markdown
from diffedu.exercises import EXERCISES

torch.set_num_threads(2)
mix = d.GaussianMixture.eight_gaussians()
s = symbols()   # the course's sympy symbols, for the symbolic exercises

# %% [markdown]
# ## 1. Every Gaussian forward process is a pair s(t), σ(t)  [EDM notes §1.1]
#
# The EDM notes observe that flow matching ($x_t = (1-t)x_0 + t\epsilon$), score matching
# ($x_t = x_0 + \sigma_t \epsilon$) and DDPM ($x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\epsilon$)
# all have the form
# $$p(x_t \mid x_0) = \mathcal N\big(s(t)\,x_0,\; s(t)^2\sigma(t)^2 I\big).$$
# The SDE $dx = f(t)x\,dt + g(t)\,dw$ has exactly such marginals, with $s = e^{\int_0^t f}$ and
# $\sigma^2 = \int_0^t g^2/s^2$. Differentiating both gives $f$ and $g$ from $s$ and $\sigma$
# [EDM eq. 28, 34]. The derivation then checks its answer against Itô's moment equations: with these
# $f, g$ the SDE's mean really is $s\,x_0$ and its variance really is $s^2\sigma^2$. Before it prints
# them, find flow matching's $g^2$ yourself: differentiate $\sigma^2 = \int_0^t g^2/s^2$.

# %% [markdown]
# **Exercise 04.flow_matching_g2** (symbolic). Flow matching has s(t) = 1 - t, sigma(t) = t / (1 -
# t): write g(t)^2 of its SDE as a sympy expression in t (sp.Symbol('t'))  [EDM notes §1.1; EDM eq.
# 6]

# %%
answer = None  # a sympy expression in the symbol the exercise names
EXERCISES["04.flow_matching_g2"].check(answer)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["04.flow_matching_g2"].reveal())

# %%
sde = sym_proc.sde_from_s_sigma()
sde.show()
assert sde.verify() == []

# %% [markdown]
# The package's `diffedu.VP`, `VE`, `EDM` and `FlowMatching` implement $s, \sigma$, their
# derivatives, and $f, g$ with plain arithmetic, so we can call them **on a sympy symbol** and
# compare with the derivation. Each line below is a check that can fail.

# %%
t = sym_proc.t
processes = {
    "VP": d.VP(sym_proc.beta_min, sym_proc.beta_max),
    "VE": d.VE(),
    "EDM": d.EDM(),
    "FlowMatching": d.FlowMatching(),
}
for name, proc in processes.items():
    for coef in ("f", "g"):
        derived = sde.result[f"{name}.{coef}"]
        assert sp.simplify(derived - getattr(proc, coef)(t)) == 0, (name, coef)
    print(f"{name:13s} f(t) = {sp.simplify(proc.f(t))!s:40s} g(t)^2 = {sp.simplify(proc.g(t) ** 2)}")

# %% [markdown]
# And back again: integrating $f$ and $g^2/s^2$ of each family returns its $s$ and $\sigma^2$.

# %%
back = sym_proc.s_sigma_from_sde()
back.show()
assert back.verify() == []

# %% [markdown]
# > **Erratum ([EDM notes] §1.1, the system of four equations for s(t) and σ(t)).** The notes write
# > $\sigma(t) = \int_0^t g^2(r)/s^2(r)\,dr$. The integral is the *variance* of $x_t/s(t)$, so the right
# > form is $\sigma(t)^2 = \int_0^t g^2(r)/s^2(r)\,dr$; the notes' own §1.2 writes
# > $\sigma(t) = \sqrt{\int_0^t g^2/s^2\,dr}$, correctly. For EDM's process $g^2 = 2t$, so the notes' form
# > would make $\sigma = t^2$ where the process has $\sigma = t$.
# > The cell below integrates $g^2/s^2$ of each process of the package: it equals $\sigma^2$, never $\sigma$.

# %%
r = sym_proc.r
print(f"{'process':13s} {'int_0^t g^2/s^2 dr':52s} = sigma^2   = sigma (notes)")
for name, proc in processes.items():
    integral = sp.simplify(sp.integrate(sp.simplify(proc.g(r) ** 2 / proc.s(r) ** 2), (r, 0, t)))
    right = sp.simplify(integral - proc.sigma(t) ** 2) == 0
    notes = sp.simplify(integral - proc.sigma(t)) == 0
    assert right and not notes, name
    print(f"{name:13s} {str(integral):52s} {right!s:10s} {notes}")

# %% [markdown]
# ## 2. The probability-flow ODE with s and σ alone  [EDM notes §1.2]
#
# The notes' plan: take the SDE's probability-flow ODE $dx = [f x - \tfrac12 g^2 \nabla_x \log p_t(x)]\,dt$
# [Song eq. 13], write $p_t$ through the data, and substitute $f, g$ from §1, so that only $s$ and
# $\sigma$ remain. They skip two steps: the PF-ODE itself (通过一个超级复杂的推导过程, "a super
# complicated derivation") and $p_t$ (经过了漫长的推导过程, "a long derivation"). Both are done here.
#
# **The noised density.** $x_t = s\,(y + \sigma n)$ with $y \sim p_{data}$ and $n \sim \mathcal N(0, I)$, so
# $y + \sigma n$ has the density of a sum (a convolution), and scaling by $s$ divides by $s^d$:

# %%
conv = sym_score.p_t_convolution()
conv.show()
assert conv.verify() == []

# %% [markdown]
# ### Q (EDM notes §1.2): why does the ODE have the same marginals as the SDE?
#
# The notes take the PF-ODE from [Song] after "a super complicated derivation". In one dimension,
# with Gaussian data, the whole argument fits on a page: the density $\mathcal N(s x_0, s^2(\sigma^2 + v))$
# of the SDE solves its Fokker-Planck equation, and the ODE $dx/dt = f x - \tfrac12 g^2 \partial_x \log p_t$
# moves that same density by the continuity equation, which is the Fokker-Planck equation with the
# diffusion term folded into the drift. Same equation, same initial density, same $p_t$ at every $t$:

# %%
fp = sym_fp.pf_ode_fokker_planck()
fp.show()
assert fp.verify() == []

# %% [markdown]
# **The PF-ODE with s and σ.** Now substitute. The chain rule on $\log p(x/s;\sigma)$ brings a
# factor $1/s$, and Tweedie's formula $\nabla \log p(y;\sigma) = (D(y;\sigma) - y)/\sigma^2$ (derived in §3)
# replaces the score by the denoiser $D$, leaving $s$, $\sigma$ and $D$ only [EDM eq. 4]. The step
# "Substitute f = ..." is the notes' last line of §1.2; the last step is the slope $d_i$ of EDM's Algorithm 1.

# %%
ode = sym_proc.pf_ode()
ode.show()
assert ode.verify() == []

# %% [markdown]
# `Process.ode_coefs(t)` returns the two coefficients $(a, b)$ of $dx/dt = a\,x - b\,D(x/s;\sigma)$.
# They match the derivation for every family, on the symbol $t$:

# %%
for name, proc in processes.items():
    a, b = proc.ode_coefs(t)
    assert sp.simplify(a - ode.result[f"{name}.a"]) == 0
    assert sp.simplify(b - ode.result[f"{name}.b"]) == 0
print("ode_coefs matches the derived PF-ODE for", ", ".join(processes))

# %% [markdown]
# ## 3. The denoiser, its loss, and the score  [EDM notes §1.3]
#
# The notes unify what each model predicts (SMLD a score, DDPM/DDIM the noise, flow matching a
# velocity) by one denoiser $D(x;\sigma)$ trained with the loss
# $\mathbb E_{y\sim p_{data}}\mathbb E_{n\sim\mathcal N(0,\sigma^2 I)}\|D(y+n;\sigma) - y\|^2$ [EDM eq. 2].
# Two facts make $D$ the right object. **Tweedie's formula** [EDM eq. 3] says the score is the
# denoising direction, $\nabla\log p(x;\sigma) = (\mathbb E[y \mid x] - x)/\sigma^2$: differentiate the
# convolution of §2 under the integral. Here for a two-component mixture in closed form:

# %%
tw = sym_score.tweedie()
tw.show()
assert tw.verify() == []

# %% [markdown]
# The package's `GaussianMixture` computes $D(x;\sigma) = E[x_0 \mid x_0 + \sigma\epsilon = x]$ for the
# course's 2-D data; autograd differentiates its exact log-density, and Tweedie holds to round-off:

# %%
x = mix.sample(256, torch.Generator().manual_seed(0)) + 0.3
for sigma in (0.05, 0.5, 5.0):
    y = x.clone().requires_grad_()
    mix.log_prob(y, sigma).sum().backward()
    err = (mix.denoiser(x, sigma) - (x + sigma**2 * y.grad)).abs().max().item()
    assert err < 1e-10
print("D(x; sigma) = x + sigma^2 grad log p(x; sigma) holds to 1e-10 at sigma = 0.05, 0.5, 5")

# %% [markdown]
# **The loss and its minimiser.** The second fact: the loss of EDM eq. 2 is minimised, at each $x$,
# by the posterior mean $\mathbb E[y \mid y + n = x]$, which is exactly the $D$ in Tweedie's formula.
# So a denoiser trained to its optimum *is* a score model, and the PF-ODE of §2 can run on it.

# %%
dm = sym_score.denoiser_minimiser()
dm.show()
assert dm.verify() == []

# %% [markdown]
# > **Erratum ([EDM notes] §1.3, "去噪网络最理想的状态: $D_\theta(y + n; \sigma) = y$", the ideal denoiser).**
# > $D$ sees only $x = y + n$, and many pairs $(y, n)$ give the same $x$, so no function of $x$ returns
# > $y$. The loss is minimised by the posterior mean $D^*(x;\sigma) = \mathbb E[y \mid y + n = x]$, and its
# > minimum is the average posterior variance $\mathbb E_x \operatorname{Var}(y \mid x) > 0$, not 0.
# > The cell below checks it on two 1-D modes $\tfrac12\mathcal N(-1, 0.3^2) + \tfrac12\mathcal N(1, 0.3^2)$ at
# > $\sigma = 0.5$ with 200 000 Monte-Carlo pairs: the exact denoiser's loss equals the posterior variance
# > (lambdified from `denoiser_minimiser`), it beats returning $x$ or the data mean, and every perturbation
# > $D^* + \delta h(x)$ costs more, by $\delta^2 \mathbb E[h^2]$.

# %%
mix1 = d.GaussianMixture.two_gaussians_1d()
sigma_b, gen = 0.5, torch.Generator().manual_seed(4)
y1 = mix1.sample(200_000, gen)
x1 = y1 + sigma_b * torch.randn(y1.shape, generator=gen, dtype=y1.dtype)
D_star = mix1.denoiser(x1, sigma_b)
S = sym_score
at = {S.m_1: -1.0, S.m_2: 1.0, S.s_1: 0.3, S.s_2: 0.3, S.w_1: 0.5, S.sig: sigma_b}
post_mean = sp.lambdify(S.x, dm.result["D"].subs(at), "numpy")
post_var = sp.lambdify(S.x, dm.result["posterior_variance"].subs(at), "numpy")
assert np.allclose(post_mean(x1.numpy()), D_star.numpy(), atol=1e-12)  # the derivation is the package's denoiser


def loss(D):
    return ((D - y1) ** 2).mean().item()


expected = post_var(x1.numpy()).mean()
print(f"D(x) = x (return the input)          loss {loss(x1):.4f}   (sigma^2 = {sigma_b**2})")
print(f"D(x) = E[y] = 0 (the data mean)      loss {loss(0 * x1):.4f}   (Var y = {1 + 0.3**2:.2f})")
print(f"D*(x) = E[y | x] (exact denoiser)    loss {loss(D_star):.4f}   (E Var(y | x) = {expected:.4f})")
print('"D = y"                              loss 0        (needs y, which D does not see)')
assert abs(loss(D_star) - expected) < 0.02 * expected and expected > 0.05
assert loss(D_star) < min(loss(x1), loss(0 * x1))
print("\nperturbation h(x)   delta   loss(D* + delta h) - loss(D*)   delta^2 E[h^2]")
for label, h in (("1", torch.ones_like(x1)), ("x", x1), ("sin 3x", torch.sin(3 * x1))):
    for delta in (-0.2, 0.05, 0.2):
        excess = loss(D_star + delta * h) - loss(D_star)
        assert excess > 0, (label, delta)
        print(f"{label:18s} {delta:+.2f}   {excess:.6f}                        {delta**2 * (h**2).mean().item():.6f}")

# %% [markdown]
# What the loss sees: the pairs $(x, y)$ form a cloud, not a curve, so "return $y$" is no function of
# $x$. The exact denoiser runs through the middle of the cloud at each $x$ (the conditional mean).
# Inside one mode it shrinks $x$ towards that mode's mean, with slope $s_k^2/(s_k^2 + \sigma^2) = 0.09/0.34
# \approx 0.26$, far flatter than $D = x$ (the cell measures it at $x = 2$); near $x = 0$, where $x$ could
# have come from either mode, it switches steeply from one mode to the other.

# %%
grid1 = torch.linspace(-2.5, 2.5, 400, dtype=torch.float64)[:, None]
fig, ax = plt.subplots(figsize=(5.5, 4))
ax.scatter(x1[:3000, 0], y1[:3000, 0], s=1, alpha=0.3, label="pairs (x, y), x = y + n")
ax.plot(grid1[:, 0], mix1.denoiser(grid1, sigma_b)[:, 0], "r", lw=2, label="D*(x) = E[y | x]")
ax.plot(grid1[:, 0], grid1[:, 0], "k--", lw=1, label="D(x) = x")
ax.set(title="sigma = 0.5: y given x is spread out; D* is its mean", xlabel="x = y + n", ylabel="y",
       xlim=(-2.5, 2.5), ylim=(-2, 2))
ax.legend(loc="upper left", fontsize=8)
plt.show()
at2 = torch.tensor([[2.0 - 1e-4], [2.0 + 1e-4]], dtype=torch.float64)
slope_at_2 = (mix1.denoiser(at2, sigma_b)[1, 0] - mix1.denoiser(at2, sigma_b)[0, 0]).item() / 2e-4
print(f"slope of D* at x = 2: {slope_at_2:.4f}   (s^2/(s^2 + sigma^2) = {0.09 / 0.34:.4f})")
assert abs(slope_at_2 - 0.09 / 0.34) < 1e-3

# %% [markdown]
# ### One network, five parameterisations
#
# A network may be trained to predict the noise $\epsilon$ (DDPM), the clean image $x_0$ or $D$ (EDM), the
# velocity $v$, or the score. They are the same information: each is an affine function of any
# other at a given $x_t$ and noise level. First the one conversion every sampler of this course
# makes, from $\hat\epsilon$ to $\hat x_0$:
#
# **Exercise 04.x0_from_eps** (symbolic). Write x_0 in x_t and eps: the denoiser an eps-prediction
# network implies  [DDPM eq. 15; EDM Tab. 1]

# %%
answer = None  # a sympy expression in s = symbols(): s.alpha_bar_t, s.alpha_bar_prev, s.eta, s.sigma, s.x_t, ...
EXERCISES["04.x0_from_eps"].check(answer)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["04.x0_from_eps"].reveal())

# %% [markdown]
# `diffedu.param` holds every conversion, and nothing else in the package converts. Below, the exact
# mixture's $\epsilon$-prediction at $t = 300$ of the linear schedule is turned into $\hat x_0$, $v$ and the
# score, and each is checked against an independent exact quantity: $\hat x_0$ against EDM's denoiser
# $D(x_t/\sqrt{\bar\alpha_t};\sigma)$ with $\sigma = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$, the score against autograd on the exact
# log-density (through `mix.score`), $v$ by the round trip back to $\epsilon$ and $x_0$. Then the reason the
# choice matters for a *trained* network: the conversion scales its errors. An error $\delta$ in $\hat\epsilon$
# becomes $\sigma\,\delta$ in $\hat x_0$ (huge at high noise), an error $\delta$ in $\hat x_0$ becomes
# $\delta/\sigma$ in $\hat\epsilon$ (huge at low noise); $v$ and EDM's $c_{out}$ (section 7) keep both bounded.

# %%
sched = d.Schedule(d.linear_betas(1000))
gen = torch.Generator().manual_seed(5)
rows = []
for t_i in (10, 300, 900):
    ab = sched.alpha_bar[t_i]
    sigma_i = ((1 - ab) / ab).sqrt()
    x_t = ab.sqrt() * mix.sample(2000, gen) + (1 - ab).sqrt() * torch.randn(2000, 2, generator=gen, dtype=torch.float64)
    eps_hat = mix.eps_model(sched)(x_t, torch.full((2000,), t_i))       # what a DDPM network predicts
    x0_hat = d.x0_from_eps(x_t, eps_hat, ab)                             # [DDPM eq. 15]: the exercise above
    v_hat = d.v_from_eps(x_t, eps_hat, ab)                               # [Salimans & Ho §4]
    score = d.score_from_eps(eps_hat, ab)                                # [Song eq. 9]
    D = mix.denoiser(x_t / ab.sqrt(), sigma_i)                           # EDM's D at the same noise level
    assert (x0_hat - D).abs().max() < 1e-9
    assert (score - mix.score(x_t / ab.sqrt(), sigma_i) / ab.sqrt()).abs().max() < 1e-9
    assert (d.eps_from_v(x_t, v_hat, ab) - eps_hat).abs().max() < 1e-9 and (d.x0_from_v(x_t, v_hat, ab) - x0_hat).abs().max() < 1e-9
    x0_err = (d.x0_from_eps(x_t, eps_hat + 0.01, ab) - x0_hat).abs().mean().item()
    eps_err = (d.eps_from_x0(x_t, x0_hat + 0.01, ab) - eps_hat).abs().mean().item()
    rows.append((t_i, sigma_i.item(), x0_err, eps_err))
print("x0_hat == D, score == autograd score, v -> eps and v -> x0 round trips: all to 1e-9\n")
print("   t    sigma    eps error 0.01 -> x0 error    x0 error 0.01 -> eps error")
for t_i, sigma_i, x0_err, eps_err in rows:
    print(f"{t_i:4d}  {sigma_i:7.3f}    {x0_err:10.4f}                  {eps_err:10.4f}")
assert rows[0][2] < 0.01 < rows[2][2] and rows[0][3] > 0.01 > rows[2][3]
assert all(abs(x0_err - 0.01 * sigma_i) < 1e-9 and abs(eps_err - 0.01 / sigma_i) < 1e-9 for _, sigma_i, x0_err, eps_err in rows)

# %% [markdown]
# The second pillar of EDM's sampler is the ODE step itself. Write Euler's step before section 4 proves
# that DDIM already was one:

# %% [markdown]
# **Exercise 04.euler_step** (code). Write euler(x, sigma, sigma_next, denoiser) -> x at sigma_next:
# one Euler step of the PF-ODE dx/dsigma = (x - D(x, sigma)) / sigma (s = 1, sigma(t) = t)  [EDM eq.
# 3, Alg. 1]

# %%
def euler(x, sigma, sigma_next, denoiser):
    return None  # your code here


EXERCISES["04.euler_step"].check(euler)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["04.euler_step"].reveal())

# %% [markdown]
# ## 4. DDIM is Euler's method
#
# In the variables $y = x_t/\sqrt{\bar\alpha_t}$ and $\sigma = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$ the forward
# process is $y = x_0 + \sigma\epsilon$, so two lines do it: DDIM's predicted clean image is
# $\hat x_0 = y - \sigma\hat\epsilon$, and its deterministic update, divided by $\sqrt{\bar\alpha_{t-1}}$, is
# $y_{next} = \hat x_0 + \sigma_{next}\hat\epsilon = y + (\sigma_{next} - \sigma)\hat\epsilon$. Euler's step on
# $dy/d\sigma = (y - D(y;\sigma))/\sigma$ [EDM eq. 3] with $D = \hat x_0$ moves $y$ by
# $(\sigma_{next} - \sigma)(y - \hat x_0)/\sigma$, and $(y - \hat x_0)/\sigma = \hat\epsilon$: the same step. The Euler
# step in the derivation below is the sampler's own `euler_step(y, slope(y, x0_hat, sigma), ...)`,
# called on sympy symbols.

# %%
proof = sym_proc.ddim_is_euler()
proof.show()
assert proof.verify() == []

# %% [markdown]
# The same statement, numerically: 20 DDIM steps on a cosine schedule, and 20 Euler steps of
# `sample_edm` on the schedule's own noise levels, agree to round-off at every step.

# %%
sched = d.Schedule(d.cosine_betas(1000))
ts = d.ddim_timesteps(1000, 20)
x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
ddim = d.sample_ddim(mix.eps_model(sched), sched, x_T, steps=20)
euler = d.sample_edm(mix.denoiser, sched.sigma[ts], x_T / sched.alpha_bar[ts[0]].sqrt(), method="euler")
gap = (ddim.xs - euler.xs * sched.alpha_bar[ts].sqrt()[:, None, None]).abs().max().item()
assert gap < 1e-10
print("DDIM and Euler agree to within 1e-10 at every step")

# %% [markdown]
# ## 5. Euler vs Heun, and Karras' noise levels
#
# EDM spaces the noise levels evenly in $\sigma^{1/\rho}$ [EDM eq. 5]. Larger $\rho$ puts more
# steps at small $\sigma$, where the mixture's modes separate. Write the grid and Heun's step (Euler's
# prediction, then the average of the slopes at both ends), and count Heun's network calls, before
# the plots below use them.

# %% [markdown]
# **Exercise 04.karras_sigmas** (code). Write karras(n, sigma_min, sigma_max, rho) -> the n noise
# levels of EDM eq. 5 from sigma_max down to sigma_min, evenly spaced in sigma^(1/rho), followed by
# a final 0 (n + 1 values, float64)  [EDM eq. 5]

# %%
def karras(n, sigma_min, sigma_max, rho):
    return None  # your code here


EXERCISES["04.karras_sigmas"].check(karras)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["04.karras_sigmas"].reveal())

# %% [markdown]
# **Exercise 04.heun_step** (code). Write heun(x, sigma, sigma_next, denoiser) -> x at sigma_next:
# one Heun step of dx/dsigma = (x - D(x, sigma)) / sigma, with sigma_next > 0  [EDM Alg. 1]

# %%
def heun(x, sigma, sigma_next, denoiser):
    return None  # your code here


EXERCISES["04.heun_step"].check(heun)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["04.heun_step"].reveal())

# %% [markdown]
# **Exercise 04.heun_calls** (code). Write heun_calls(n) -> how many denoiser calls sample_edm(...,
# method='heun') makes on karras_sigmas(n) (n + 1 levels, the last one 0), as a formula in n  [EDM
# Alg. 1]

# %%
def heun_calls(n):
    return None  # your code here


EXERCISES["04.heun_calls"].check(heun_calls)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["04.heun_calls"].reveal())

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for rho in (1, 3, 7, 15):
    levels = d.karras_sigmas(18, rho=rho)[:-1]
    ax.semilogy(range(len(levels)), levels, "o-", ms=3, label=f"rho = {rho}")
ax.set(title="Karras noise levels, 18 steps from 80 to 0.002", xlabel="step i", ylabel="sigma_i")
ax.legend()
plt.show()

# %% [markdown]
# **Convergence order, measured.** Solve the ODE from $\sigma = 80$ to $\sigma_{min}$ with $n$ steps
# and compare with a 4096-step Heun solve from the same noise. Euler is first order (error
# $\propto$ NFE$^{-1}$), Heun second order (NFE$^{-2}$); the fitted slopes say so.

# %%
x80 = 80 * torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
reference = d.sample_edm(mix.denoiser, d.karras_sigmas(4096), x80, "heun").xs[-2]
curves = {}
for method, ns in (("euler", [16, 32, 64, 128, 256]), ("heun", [24, 32, 64, 128, 256])):
    nfe, err = [], []
    for n in ns:
        traj = d.sample_edm(mix.denoiser, d.karras_sigmas(n), x80, method)
        nfe.append(traj.nfe - 1)
        err.append((traj.xs[-2] - reference).norm(dim=1).mean().item())
    curves[method] = (nfe, err, np.polyfit(np.log(nfe), np.log(err), 1)[0])
    print(f"{method:5s} fitted slope {curves[method][2]:+.2f}")
assert abs(curves["euler"][2] + 1) < 0.2 and abs(curves["heun"][2] + 2) < 0.2

fig, ax = plt.subplots(figsize=(5, 3.5))
for method, (nfe, err, slope) in curves.items():
    ax.loglog(nfe, err, "o-", label=f"{method} (slope {slope:.2f})")
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.set(title="Error at sigma_min against a fine solve", xlabel="NFE", ylabel="mean |x - x_ref|")
ax.legend()
plt.show()

# %% [markdown]
# Second order is an *asymptotic* promise. At a budget of about 10 network calls, Heun gets only
# 6 steps, and on this mixture its correction overshoots: points land beyond the modes. Euler's 10
# smaller steps do better here; Heun wins once the steps are fine enough (the plot above).
# Contours are the true density.

# %%
grid = torch.linspace(-3, 3, 200, dtype=torch.float64)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
density = mix.log_prob(torch.stack([gx.ravel(), gy.ravel()], 1)).exp().reshape(200, 200)
fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharey=True)
for ax, (method, n) in zip(axes, (("euler", 10), ("heun", 6))):
    traj = d.sample_edm(mix.denoiser, d.karras_sigmas(n), 80 * x_T, method)
    ax.contour(gx, gy, density, levels=6, colors="grey", linewidths=0.5)
    ax.scatter(*traj.x.T, s=1, alpha=0.4)
    ax.set(title=f"{method}, NFE = {traj.nfe}\nper-mode Fréchet {mix.per_mode_frechet(traj.x):.4f}",
           xlabel="x_1", xlim=(-3, 3), ylim=(-3, 3))
axes[0].set_ylabel("x_2")
plt.show()

# %% [markdown]
# ## 6. Stochastic churn
#
# EDM's Algorithm 2 adds noise to climb from $\sigma_i$ to $\hat\sigma_i = (1+\gamma_i)\sigma_i$ before
# each step, which lets later steps correct earlier errors. With the exact denoiser there is
# little to correct, and the extra noise costs accuracy at a fixed step count; the table shows the
# per-mode Fréchet distance for a few settings (fixed noise). With 18 steps, gamma_i =
# min(S_churn / 18, sqrt(2) - 1) saturates at S_churn = 7.5.

# %%
print("s_churn   NFE   per-mode Fréchet")
for s_churn in (0, 1, 3, 7):
    traj = d.sample_edm(mix.denoiser, d.karras_sigmas(18), 80 * x_T, "heun", s_churn=s_churn,
                        s_tmin=0.05, s_tmax=50, generator=torch.Generator().manual_seed(2))
    print(f"{s_churn:7d} {traj.nfe:5d}   {mix.per_mode_frechet(traj.x):.5f}")

# %% [markdown]
# **On a trained network churn pays.** The exact denoiser has no error to forget; a trained one does,
# and notebook 03 (section 4) showed that fresh noise lets a sampler forget a systematic error that a
# deterministic one carries to the end. `benchmarks/churn.py` runs Heun on 18 Karras levels with the
# same settings on the course's two trained UNets (same $x_T$, same churn noise, FID with the course's
# classifiers; its header has the command):

# %%
churn_table = results_table("churn")
churn = {(m[1].strip(), int(m[2])): float(m[3])
         for m in re.finditer(r"^\| ([^|]+) \| (\d+) \| \d+ \| ([\d.]+) \|", churn_table, re.M)}
models = sorted({name for name, _ in churn}, key=lambda name: ("exact" not in name, name))
levels_churn = sorted({k for _, k in churn})
print(f"{'S_churn':>40s}" + "".join(f"{k:>9d}" for k in levels_churn))
for name in models:
    print(f"{name:>40s}" + "".join(f"{churn[name, k]:9.4g}" for k in levels_churn))
digits_row = {k: v for (name, k), v in churn.items() if name.startswith("digits")}
mnist_row = {k: v for (name, k), v in churn.items() if name.startswith("MNIST")}
exact_row = {k: v for (name, k), v in churn.items() if name.startswith("exact")}

# %% [markdown]
# **Reading it.** The three rows go opposite ways. On the exact mixture every bit of churn costs: the
# per-mode distance grows steadily from 0.00045 to 0.0016 at saturation. On the MNIST UNet it falls at
# every step of $S_{churn}$, FID 7.4 without churn to 4.9 at saturation, with the same 35 network calls;
# that is about DDPM's 4.3 with 1000 calls (`benchmarks/results/mnist_table.md`), and the share of
# recognisable digits rises from 91% to 94%. On the 8x8 digits UNet it falls from 1.37 to 0.79 at
# $S_{churn} = 4$ and rises again to 1.00 at saturation; two sets of 1000 real digits are 0.51 ± 0.14 apart
# (`benchmarks/results/fid_table.md`), so the fall is real and the rise near the metric's noise. Churn repairs the network's errors, and
# where there are none it only adds its own; how much to use is a setting of each network, which is
# why EDM searches $S_{churn}$ and its companions for every model it samples [EDM §4].

# %%
assert all(exact_row[a] < exact_row[b] for a, b in zip(levels_churn, levels_churn[1:]))
assert min(digits_row.values()) < 0.7 * digits_row[0] and digits_row[max(levels_churn)] < digits_row[0]
assert all(mnist_row[a] > mnist_row[b] for a, b in zip(levels_churn, levels_churn[1:])) and mnist_row[max(levels_churn)] < 0.7 * mnist_row[0]

# %% [markdown]
# ## 7. Preconditioning
#
# A network $F$ is wrapped as $D(x;\sigma) = c_{skip}x + c_{out}F(c_{in}x, c_{noise})$. EDM picks
# $c_{in}$ for a unit-variance input and $c_{skip}, c_{out}$ so that the target $F$ must learn has
# unit variance with the smallest possible $c_{out}$ (which scales the network's errors):

# %%
pre = sym_precond.edm_preconditioning()
pre.show()
assert pre.verify() == []
sig, sd = sym_precond.sigma_n, sym_precond.sigma_data
for name, value in zip(("c_skip", "c_out", "c_in"), d.edm_scalings(sig, sd)):
    assert sp.simplify(value - pre.result[name]) == 0, name
print("diffedu.edm_scalings matches the derivation for c_skip, c_out, c_in")

# %%
sigmas = torch.logspace(-2.5, 2, 200, dtype=torch.float64)
c_skip, c_out, c_in = d.edm_scalings(sigmas)
fig, ax = plt.subplots(figsize=(6, 3.5))
for values, label in ((c_skip, "c_skip"), (c_out, "c_out"), (c_in, "c_in")):
    ax.semilogx(sigmas, values, label=label)
ax.axvline(0.5, color="grey", ls=":", label="sigma_data = 0.5")
ax.set(title="EDM preconditioning: skip the input at low noise, predict it at high noise",
       xlabel="sigma", ylabel="coefficient")
ax.legend()
plt.show()

# %% [markdown]
# ## 8. Move it yourself: the grid, the solver, churn, and the field
#
# `PFODEExplorer` runs `sample_edm` on the eight Gaussians from fixed noise (the seed's) and draws three
# panels. **Left**, 48 paths from $\sigma = 80$ to 0 (red: where they end; black: where they were at the
# grid level nearest the chosen `sigma`) over the field $(D(x;\sigma) - x)/\sigma = \sigma\,\nabla_x\log p(x;\sigma)$ at
# that `sigma` (Tweedie, section 3): the direction a particle moves in as $\sigma$ decreases, arrows of one
# length, coloured by size. **Middle**, the Karras grid of section 5 on a log axis. **Right**, 1000
# samples with their per-mode Fréchet distance. The title gives the mean distance of the samples to an
# accurate solution of the same ODE from the same noise (Heun with 256 levels): with $S_{churn} = 0$ that
# is the solver's error alone, with churn how far the fresh noise moved the samples.
#
# Things to try: `rho` at 10 steps (where does the grid spend its steps, and what happens to the error?);
# Euler against Heun at 5 steps and at 18; `sigma` from 20 down to 0.1 (at large $\sigma$ every arrow
# points at the data's mean; the field splits towards the eight modes only below $\sigma \approx 1$, which
# is when the paths choose their mode); `S_churn` from 0 up.

# %%
pf = PFODEExplorer(steps=18, rho=7.0, sigma=1.0, threads=2)
pf.widget()

# %% [markdown]
# For a reader without a kernel, the measurement behind "Heun wins once the steps are fine enough" (the
# distance to the accurate solution, same noise), and the explorer at 5 Heun steps, where the
# correction overshoots:

# %%
still = PFODEExplorer(steps=18, rho=7.0, sigma=1.0, threads=2)   # its own, so the sliders above keep theirs
print("steps   Euler: distance   Heun: distance (NFE)")
dist = {}
for steps in (5, 10, 18, 40):
    for solver in ("euler", "heun"):
        still.set(solver=solver, steps=steps, rho=7.0, s_churn=0.0, sigma=1.0)
        dist[solver, steps] = (still.metrics["distance_to_ode"], still.metrics["nfe"])
    print(f"{steps:5d}   {dist['euler', steps][0]:15.4f}   {dist['heun', steps][0]:8.4f} ({dist['heun', steps][1]})")
assert dist["heun", 5][0] > dist["euler", 5][0] and dist["heun", 18][0] < dist["euler", 18][0] / 2
assert dist["heun", 40][0] < dist["euler", 40][0] / 4
still.set(solver="heun", steps=5, sigma=1.0)
still.fig
