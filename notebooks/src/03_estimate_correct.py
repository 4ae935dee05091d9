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
# # 03 · Estimate, then correct: one loop for every reverse process
#
# **The question.** DDPM and DDIM were derived from Gaussian densities. What is left of them if
# the forward process is *any* corruption $x_t = \mathcal F_t(x_0, \epsilon)$, noise or a blur with no noise at all?
#
# **By the end you can** write a reverse step as "estimate $\hat x_0$ from $x_t$, then correct to
# $x_{t-1}$", state the marginal constraint every correction must keep, recover DDPM and DDIM as
# special cases (checked, not claimed), see why ignoring $x_t$ accumulates error, and run the same
# loop on a blur that has no noise at all, to restore digits and to generate them.
#
# This follows Su Jianlin's "unified diffusion model" post [UDM] (生成扩散模型漫谈(十), 2022) and its
# comment thread; where we follow the post's own numbered equations we cite them as [UDM eq. N].
# The reverse step factorises [UDM eq. 2]:
# $$p(x_{t-1}\mid x_t) = \int p(x_{t-1}\mid x_t, x_0)\,p(x_0\mid x_t)\,dx_0 .$$
# The model learns $p(x_0 \mid x_t)$, the *estimate* (预估); $p(x_{t-1} \mid x_t, x_0)$ is ours to design,
# the *correction* (修正), subject to one constraint, the marginal (边缘分布) identity [UDM eq. 7]:
# $$\int p(x_{t-1}\mid x_t, x_0)\,p(x_t\mid x_0)\,dx_t = p(x_{t-1}\mid x_0).$$
#
# The post's readers asked the questions a careful learner asks. Each is answered below under a heading
# that starts with **Q** (Q1-Q6), with a derivation or an experiment that shows the answer:
# Q1 why the solved noise may replace the noise of $\mathcal F_{t-1}$, and why the noise of $x_{t+1}$ may not;
# Q2 how the deterministic correction is a Dirac delta (eq. 10 to eq. 11); Q3 why each step's solved noise
# still differs; Q4 why replace the noise at all; Q5 the training objective (eq. 4-6); Q6 whether
# $\hat x_0$ is a sample of $p(x_0\mid x_t)$ or its mean.
#
# (The post numbers every display equation in order: eq. 1 the reparameterisation
# $x_t = \mathcal F_t(x_0, \epsilon)$, eq. 3 the two-line sampling recipe, eq. 4 the Gaussian $q(x_0\mid x_t)$,
# eq. 5-6 the objective, eq. 7 this constraint, eq. 8 the correction that ignores $x_t$, eq. 9 the pair
# $x_{t-1} = \mathcal F_{t-1}(x_0, \epsilon)$, $x_t = \mathcal F_t(x_0, \epsilon)$, eq. 10-11 the deterministic
# correction, eq. 12-13 the partial one.)
#
# **Exercises** stand where their answer is needed, *before* the notebook shows it. Each answer
# cell starts unanswered (`None`) and its check says so. Write your answer and run the cell: the
# check says whether you are right and, if not, where your answer differs (the symbol values, the
# input, the first entry that disagrees), with a hint. The collapsed cell under each exercise shows
# the reference: open it after you have tried. Every later cell runs whether or not you answered.

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np
import sympy as sp
import torch

import diffedu as d
from diffedu.course import results_table
from diffedu.symbolic import unified as sym_unified
from diffedu.widgets import Explorer2D
from IPython.display import Markdown
from diffedu.exercises import EXERCISES

torch.set_num_threads(2)
mix = d.GaussianMixture.eight_gaussians()
sched = d.Schedule(d.linear_betas(1000))
forward = d.GaussianForward(sched)

# %% [markdown]
# ## 1. Three corrections
#
# With $\hat\epsilon = \mathcal F_t^{-1}(\hat x_0, x_t)$ the noise that would explain $x_t$:
#
# | correction | $x_{t-1}$ | uses $x_t$? |
# | --- | --- | --- |
# | `"marginal"` | $\mathcal F_{t-1}(\hat x_0, z)$, fresh $z$ [UDM eq. 8] | no |
# | `"deterministic"` | $\mathcal F_{t-1}(\hat x_0, \hat\epsilon)$ [UDM eq. 10] | fully |
# | `"partial"` | $\mathcal F_{t-1}(\hat x_0, \text{a mix of } \hat\epsilon \text{ and a fresh } z)$, weighted by $\tilde\sigma \in [0, 1]$ [UDM eq. 13] | partly |
#
# Write two of them before you read the package's: the deterministic correction for the Gaussian
# $\mathcal F_t(x_0, \epsilon) = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$ (invert it for $\epsilon$ first), and
# the partial correction's mix. The mix has one condition: when $\hat\epsilon$ and $z$ are independent
# $\mathcal N(0, I)$ the mix must be $\mathcal N(0, I)$ too, for every $\tilde\sigma$, with $\tilde\sigma = 1$ all fresh noise.

# %% [markdown]
# **Exercise 03.deterministic_correction** (code). Write correct(x_t, x0_hat, alpha_bar,
# alpha_bar_prev) -> x_{t-1}, the deterministic correction for the Gaussian forward process: solve
# eps_hat from x_t and x0_hat, then F_{t-1}(x0_hat, eps_hat)  [UDM eq. 12]

# %%
def correct(x_t, x0_hat, alpha_bar, alpha_bar_prev):
    return None  # your code here


EXERCISES["03.deterministic_correction"].check(correct)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["03.deterministic_correction"].reveal())

# %% [markdown]
# **Exercise 03.partial_noise** (code). Write partial(eps_hat, z, sigma_tilde) -> the noise the
# partial correction feeds to F_{t-1}, which must still be N(0, I) when eps_hat and z are
# independent N(0, I)  [UDM eq. 13]

# %%
def partial(eps_hat, z, sigma_tilde):
    return None  # your code here


EXERCISES["03.partial_noise"].check(partial)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["03.partial_noise"].reveal())

# %% [markdown]
# All three corrections live in one function; here is its step, the whole of it (the partial mix is
# $\sqrt{1-\tilde\sigma^2}\,\hat\epsilon + \tilde\sigma z$):

# %%
src = inspect.getsource(d.sample_estimate_correct)
print(src[src.index("    def step"):src.index("    return run")])

# %% [markdown]
# ## 2. Each correction keeps the marginal
#
# For Gaussian $\mathcal F$, put the true $x_0$ in and average over the noises: the partial
# correction gives mean $\sqrt{\bar\alpha_{t-1}}x_0$ and variance $1-\bar\alpha_{t-1}$ for **every**
# $\tilde\sigma$, so "marginal" ($\tilde\sigma = 1$) and "deterministic" ($\tilde\sigma = 0$) too.

# %%
udm = sym_unified.corrections_keep_the_marginal()
udm.show()
assert udm.verify() == []

# %% [markdown]
# ### Q1 ([UDM] comments): why may the solved noise replace the noise of $\mathcal F_{t-1}$?
#
# > *"The forward process never said that $x_t$ and $x_{t-1}$ were made with the same $\epsilon$. Why may the
# > $\epsilon$ solved from $x_t$ stand in for the $\epsilon$ of $\mathcal F_{t-1}(x_0, \epsilon)$? And the
# > author says the noise solved from $x_{t+1}$ would not do: why not?"*
#
# **The answer in one line.** Eq. 7 is a statement about the *marginal* $p(x_{t-1}\mid x_0)$ and nothing else.
# Given $x_0$, the noise solved from $x_t$ *is* the noise that made $x_t$, so it is $N(0, 1)$ and independent of
# $x_0$, and $\mathcal F_{t-1}(x_0, \hat\epsilon)$ has exactly the law $q(x_{t-1}\mid x_0)$. The forward process
# did not say the two noises are the same, but eq. 7 does not ask what the *joint* of $(x_t, x_{t-1})$ is:
# reuse gives a different joint from DDPM's chain (step 4 below), with the same marginals. "Not the same
# $\epsilon$" was never a requirement; "the right marginal" is.
#
# **Why not $x_{t+1}$.** A correction must be a kernel $p(x_{t-1}\mid x_t, x_0)$: eq. 2 integrates it
# against $p(x_0\mid x_t)$, the estimate made from $x_t$. A rule that reads $x_{t+1}$ is not such a kernel,
# and eq. 7 says nothing about it. It keeps the marginal only if $\hat x_0$ has the right joint with
# $x_{t+1}$, $\mathrm{Cov}(\hat x_0, x_{t+1}) = \sqrt{\bar\alpha_{t+1}}$. The estimate $\hat x_0 \sim p(x_0\mid x_t)$
# reads $x_{t+1}$ only through $x_t$, so that covariance depends on how the previous step made $x_t$. Eq. 7
# does not fix that. After a marginal or a deterministic step the covariance is wrong and so is
# $\mathrm{Var}(x_{t-1})$. After a DDPM step it happens to be right. With the estimate made from $x_{t+1}$
# itself, the rule is DDIM's two-step jump, in which $x_t$ plays no part; this is the commenter's
# "it is just DDIM". The derivation below does all three parts on data $x_0 \sim N(0, 1)$ (every VP marginal
# is then $N(0, 1)$) with exact posterior samples; part 2 is Q2.

# %%
nr = sym_unified.udm_noise_reuse()
nr.show()
assert nr.verify() == []

# %% [markdown]
# What goes wrong, measured with the package's own $\mathcal F$ and $\mathcal F^{-1}$: 200 000 chains on
# $x_0 \sim N(0, 1)$, exact posterior samples from `GaussianMixture.posterior_sample`, a marginal step
# $x_{t+1} \to x_t$ (t + 1 = 500, t = 400), then $x_{t-1}$ (t - 1 = 300) with the noise solved from $x_t$ and with
# the noise solved from $x_{t+1}$. The true marginal is $N(0, 1)$.

# %%
gauss = d.GaussianMixture([[0.0]], 1.0)                  # x_0 ~ N(0, 1)
g = torch.Generator().manual_seed(0)
t_next, t_now, t_prev = 500, 400, 300
ab = {s: sched.alpha_bar[s].item() for s in (t_next, t_now, t_prev)}


def posterior_draw(x, s):
    """x0_hat ~ p(x_0 | x_s): x_s = sqrt(ab)(x_0 + sigma n), sigma^2 = (1 - ab) / ab."""
    return gauss.posterior_sample(x / ab[s] ** 0.5, ((1 - ab[s]) / ab[s]) ** 0.5, g)


n_chains = 200_000
x_next = torch.randn(n_chains, 1, generator=g, dtype=torch.float64)     # x_{t+1} ~ q(x_{t+1}) = N(0, 1)
x0_prev_est = posterior_draw(x_next, t_next)
x_now = forward.F(x0_prev_est, torch.randn(n_chains, 1, generator=g, dtype=torch.float64), t_now)   # marginal step
x0_hat = posterior_draw(x_now, t_now)
from_t = forward.F(x0_hat, forward.F_inv(x0_hat, x_now, t_now), t_prev)
from_next = forward.F(x0_hat, forward.F_inv(x0_hat, x_next, t_next), t_prev)
point = {sym_unified.alpha_bar_next: ab[t_next], sym_unified.alpha_bar_t: ab[t_now],
         sym_unified.alpha_bar_prev: ab[t_prev]}
predicted = 1 + float(nr.result["var_error"]["marginal"].subs(point))
tol = 5 * (2 / n_chains) ** 0.5                         # five standard errors of a sample variance near 1
print(f"Var(x_t)                          {x_now.var().item():.3f}   (q: 1)")
print(f"Var(x_(t-1)), noise from x_t      {from_t.var().item():.3f}   (q: 1)")
print(f"Var(x_(t-1)), noise from x_(t+1)  {from_next.var().item():.3f}   (derived: {predicted:.3f})")
assert abs(x_now.var().item() - 1) < tol and abs(from_t.var().item() - 1) < tol
assert abs(from_next.var().item() - predicted) < tol and abs(predicted - 1) > 4 * tol

# %% [markdown]
# ### Q2 ([UDM] comments): how does eq. 10 give the Dirac delta of eq. 11?
#
# > *"How do you get from eq. 10, $x_{t-1} = \mathcal F_{t-1}(x_0, \mathcal F_t^{-1}(x_0, x_t))$, to eq. 11,
# > $p(x_{t-1}\mid x_t, x_0) = \delta(\cdot)$?"*
#
# A deterministic map $x_{t-1} = g(x_t)$ is a distribution that puts all its mass on one point: its
# density is $\delta(x_{t-1} - g(x_t))$. That is what the author means by "the definition of the Dirac
# function". It is still a valid kernel for eq. 7: integrating $\delta(x_{t-1} - k x_t - b)$ against
# $q(x_t\mid x_0)$ is a change of variables, $q\big((x_{t-1} - b)/k\big)/k$ (steps 5-7 above), and that density
# is exactly $q(x_{t-1}\mid x_0)$. So the deterministic correction is allowed, although it has no fresh
# noise at all. Below, the pushforward density from the derivation is evaluated on a grid against the
# target $N(\sqrt{\bar\alpha_{t-1}}x_0, 1-\bar\alpha_{t-1})$ (t = 600, t - 1 = 550, $x_0 = 0.7$).

# %%
y_grid = np.linspace(-3, 3, 61)
x0_val, ab_now, ab_before = 0.7, sched.alpha_bar[600].item(), sched.alpha_bar[550].item()
args = (sym_unified.alpha_bar_t, sym_unified.alpha_bar_prev, sym_unified.x_0, sym_unified.x_prev)
pushed = sp.lambdify(args, nr.result["pushforward"])(ab_now, ab_before, x0_val, y_grid)
target = sp.lambdify(args, nr.result["target"])(ab_now, ab_before, x0_val, y_grid)
print(f"largest relative gap between the pushforward and q(x_(t-1) | x_0) on the grid: "
      f"{np.max(np.abs(pushed - target) / target):.0e}")
assert np.allclose(pushed, target, rtol=1e-12, atol=0)

# %% [markdown]
# Section 2's derivation ends on the map between $\tilde\sigma$ and DDIM's $\sigma_t$ (its steps 4-5). Use it
# twice, with DDIM's $\sigma_t(\eta)$ of notebook 02, before section 3 runs it:
#
# **Exercise 03.sigma_tilde_of_ddpm** (numeric). The partial correction with which sigma_tilde is
# DDPM's step (DDIM eta = 1) from alpha_bar_t = 0.3 to alpha_bar_(t-1) = 0.5?  [UDM eq. 13, DDIM eq.
# 16]

# %%
answer = None  # a number
EXERCISES["03.sigma_tilde_of_ddpm"].check(answer)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["03.sigma_tilde_of_ddpm"].reveal())

# %% [markdown]
# **Exercise 03.sigma_tilde_for_eta** (numeric). Which sigma_tilde makes the partial correction
# reproduce DDIM with eta = 0.5 at the first step of the 10-step grid d.ddim_timesteps(1000, 10) of
# the linear schedule?  [UDM eq. 13, DDIM eq. 16]

# %%
answer = None  # a number
EXERCISES["03.sigma_tilde_for_eta"].check(answer)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["03.sigma_tilde_for_eta"].reveal())

# %% [markdown]
# ## 3. DDIM is the partial correction
#
# Matching the coefficient of the fresh noise with DDIM's update gives the map
# $\sigma = \sqrt{1-\bar\alpha_{t-1}}\,\tilde\sigma$, and then the coefficient of $\hat\epsilon$ is
# DDIM's $\sqrt{1-\bar\alpha_{t-1}-\sigma^2}$ (checked above). The package's conversion functions
# are that map, evaluated on symbols:

# %%
ab_prev, sig = sp.symbols("alpha_bar_prev sigma", positive=True)
st = sym_unified.sigma_tilde
assert sp.simplify(d.samplers.estimate_correct.ddim_sigma_from_sigma_tilde(ab_prev, st) - udm.result["sigma"].subs("alpha_bar_prev", ab_prev)) == 0
print("sigma(sigma_tilde) =", d.samplers.estimate_correct.ddim_sigma_from_sigma_tilde(ab_prev, st))

# %% [markdown]
# Now run it. On the exact mixture, with the noise fixed, `"deterministic"` retraces DDIM
# (eta = 0) and `"partial"` with the per-step $\tilde\sigma$ of eta = 1 retraces DDIM (eta = 1), which
# with all 1000 steps is DDPM.

# %%
x0_model = d.x0_model_from_eps(mix.eps_model(sched), sched)
x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

ts = d.ddim_timesteps(1000, 50)
det = d.sample_estimate_correct(x0_model, forward, ts, x_T, "deterministic")
ddim = d.sample_ddim(mix.eps_model(sched), sched, x_T, steps=50, eta=0.0)
assert (det.xs - ddim.xs).abs().max() < 1e-10
print("deterministic correction == DDIM(eta=0) over 50 steps")

noises = [torch.randn(2000, 2, generator=torch.Generator().manual_seed(10 + i), dtype=torch.float64) for i in range(999)]
ts_all = d.ddim_timesteps(1000, 1000)
partial = d.sample_estimate_correct(x0_model, forward, ts_all, x_T, "partial",
                                    sigma_tilde=d.sigma_tilde_for_eta(sched, ts_all, 1.0), noises=noises)
ddpm = d.sample_ddpm(mix.eps_model(sched), sched, x_T, variance="beta_tilde", noises=noises)
assert (partial.x - ddpm.x).abs().max() < 1e-8
print("partial correction with the eta = 1 sigma_tilde == DDPM over 1000 steps")

# %% [markdown]
# ### Q3 ([UDM] comments): if the noise is reused, why does each step's solved noise still differ?
#
# > *"If we treat the $\epsilon$ as one and the same, is $p(x_{t-1}\mid x_t, x_0)$ then deterministic?"*
#
# The author's reply has two parts. Replacing *all* the noise makes the step deterministic; replacing part
# of it (eq. 13) keeps it random. And even with all of it replaced, the noise is not "one and the same": each
# step solves its own $\hat\epsilon_t = \mathcal F_t^{-1}(\hat x_0, x_t)$ from its own pair. The deterministic
# step puts $x_{t'} = \mathcal F_{t'}(\hat x_0^{(t)}, \hat\epsilon_t)$ at the next time $t'$. So the next solved
# noise is
# $$\hat\epsilon_{t'} = \hat\epsilon_t + \sqrt{\tfrac{\bar\alpha_{t'}}{1-\bar\alpha_{t'}}}\,\big(\hat x_0^{(t)} - \hat x_0^{(t')}\big):$$
# it changes exactly when the estimate changes, by $\sqrt{\mathrm{SNR}_{t'}}$ times the change. It would stay
# fixed only if $\hat x_0$ never changed its mind. Measured along the 50-step deterministic run above, on
# the exact mixture:

# %%
ab_grid = sched.alpha_bar[ts[:-1]].reshape(-1, 1, 1)           # alpha_bar at the 50 times an estimate is made
e_hats = (det.xs[:-1] - ab_grid.sqrt() * det.x0_hats) / (1 - ab_grid).sqrt()   # e_hat = F_t^{-1}(x0_hat, x_t)
predicted_change = (ab_grid[1:] / (1 - ab_grid[1:])).sqrt() * (det.x0_hats[:-1] - det.x0_hats[1:])
assert torch.allclose(e_hats[1:] - e_hats[:-1], predicted_change, rtol=0, atol=1e-8)


def rms(v):
    return v.pow(2).sum(-1).mean(-1).sqrt()


change_e, change_x0 = rms(e_hats[1:] - e_hats[:-1]), rms(det.x0_hats[1:] - det.x0_hats[:-1])
total = rms(e_hats[-1] - e_hats[0]).item()
print(f"rms change of e_hat per step: largest {change_e.max().item():.3f}, smallest {change_e.min().item():.2e}")
print(f"rms distance between the first and the last e_hat: {total:.2f} (two independent N(0, I) draws: 2.00)")
assert change_e.min() > 0 and total > 0.5
fig, ax = plt.subplots(figsize=(7, 3.4))
ax.semilogy(ts[1:-1], change_e, label=r"$\|\hat\epsilon_{t'} - \hat\epsilon_t\|$ (rms over samples)")
ax.semilogy(ts[1:-1], change_x0, "--", label=r"$\|\hat x_0^{(t')} - \hat x_0^{(t)}\|$")
ax.set(xlabel="t' (the step's new time)", ylabel="change from the previous step",
       title="Along one deterministic run the solved noise changes at every step")
ax.invert_xaxis()
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. What each correction does to samples
#
# The exact $\hat x_0$ hides the difference, so give every correction the same wrong network: one whose
# noise prediction is 10% too small, $\hat\epsilon = 0.9\,\epsilon^*(x_t, t)$, the kind of error a trained
# $\epsilon$-network makes. Its estimate $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$ is
# off by $0.1\sqrt{1-\bar\alpha_t}/\sqrt{\bar\alpha_t}\,\epsilon^*$: far off early, almost exact at the last step.
# (Scaling $\hat x_0$ itself by 0.9 would not do: the loop's last step returns $\hat x_0$, so every
# correction would end on the same shrunk estimate and the corrections would never show.)
# Same $x_T$, same fresh noises; per-mode Fréchet distance to the eight Gaussians under each panel, with the
# exact network's in brackets:

# %%
def eps_under(x, t):
    """An eps-network that predicts 90% of the exact noise."""
    return 0.9 * mix.eps_model(sched)(x, t)


x0_under = d.x0_model_from_eps(eps_under, sched)
grid = torch.linspace(-3, 3, 200, dtype=torch.float64)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
density = mix.log_prob(torch.stack([gx.ravel(), gy.ravel()], 1)).exp().reshape(200, 200)
corrections = (("marginal", {}), ("partial", {"sigma_tilde": 0.5}), ("deterministic", {}))
trajs, exact, frechet = {}, {}, {}
fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), sharey=True)
for ax, (name, kw) in zip(axes, corrections):
    traj = trajs[name] = d.sample_estimate_correct(x0_under, forward, ts, x_T, name,
                                                   generator=torch.Generator().manual_seed(1), **kw)
    exact[name] = d.sample_estimate_correct(x0_model, forward, ts, x_T, name,
                                            generator=torch.Generator().manual_seed(1), **kw)
    frechet[name] = (mix.per_mode_frechet(traj.x).item(), mix.per_mode_frechet(exact[name].x).item())
    ax.contour(gx, gy, density, levels=6, colors="grey", linewidths=0.5)
    ax.scatter(*traj.x.T, s=1, alpha=0.4)
    label = name + (" (sigma_tilde 0.5)" if kw else "")
    ax.set(title=f"{label}\nper-mode Fréchet {frechet[name][0]:.4f} ({frechet[name][1]:.4f})", xlabel="x_1",
           xlim=(-3, 3), ylim=(-3, 3))
axes[0].set_ylabel("x_2")
plt.suptitle("The same eps-network, 10% too small, three corrections, 50 steps (exact network's distance in brackets)")
plt.tight_layout()
plt.show()
for name, (f_under, f_exact) in frechet.items():
    print(f"{name:13s} per-mode Fréchet: eps 10% too small {f_under:.4f}, exact {f_exact:.4f}")

# %% [markdown]
# The deterministic correction ends furthest from the data, 0.0125 against 0.0023 (marginal) and 0.0001
# (partial), although with the exact network it is the best of the three. The modes it draws are too wide:
# a too-small $\hat\epsilon$ removes too little noise at each step, and with all the noise reused that
# leftover is carried to the end. The partial correction, which reuses half the noise and draws the other
# half fresh, ends closest.

# %%
assert frechet["deterministic"][0] > 5 * frechet["marginal"][0] > 5 * frechet["partial"][0]
assert frechet["deterministic"][1] < frechet["partial"][1] < frechet["marginal"][1]

# %% [markdown]
# ### Q4 ([UDM] comments): why replace the noise at all?
#
# > *"You explained why the replacement is allowed, but not why we should do it. What does it gain over
# > drawing fresh noise?"*
#
# The post's answer (after eq. 8): the estimate is never exact. A correction that builds $x_{t-1}$ from
# $\hat x_0$ alone makes all of $x_{t-1}$ anew at every step, so each step's estimation error goes in whole,
# and its fresh noise can wash out what the estimate has just found. Reusing the noise lets $x_t$ carry part of
# $x_{t-1}$'s dependence on $x_0$ (in the post's words, $x_t$ 分摊了 $x_{t-1}$ 对 $x_0$ 的部分依赖), so the
# progress made so far is kept. Two numbers show what that buys, and the figure above shows what it costs.
#
# - **The weight of $\hat x_0$ in $x_{t-1}$**, i.e. how much of an error $\delta$ in the estimate goes into
#   $x_{t-1}$: $\sqrt{\bar\alpha_{t-1}}$ for the marginal correction; for the deterministic one it is
#   $A_t = \sqrt{\bar\alpha_{t-1}} - \sqrt{\bar\alpha_t}\sqrt{1-\bar\alpha_{t-1}}/\sqrt{1-\bar\alpha_t}$
#   (step 9 of `udm_noise_reuse` with $s = t$), which is small when the step is small.
# - **The drift.** After each step, the rms distance between the path of the wrong network and the path of
#   the exact one (same $x_T$, same fresh noises): how far each sample has been pushed off its course.

# %%
weight_det = sp.lambdify((sym_unified.alpha_bar_t, sym_unified.alpha_bar_prev),
                         nr.result["A"].subs(nr.result["ab_s"], sym_unified.alpha_bar_t))
ab_steps = sched.alpha_bar[ts]
drift = {name: rms(trajs[name].xs - exact[name].xs) for name, _ in corrections}
print("step   t -> t-1   weight of x0_hat: marginal  deterministic   drift: marginal  partial  deterministic")
for i in (9, 24, 39, 44, 48):
    a_t, a_p = ab_steps[i].item(), ab_steps[i + 1].item()
    print(f"{i + 1:4d}  {int(ts[i]):4d} -> {int(ts[i + 1]):3d}   {a_p ** 0.5:17.3f}  {weight_det(a_t, a_p):13.3f}   "
          f"{drift['marginal'][i + 1]:15.3f}  {drift['partial'][i + 1]:7.3f}  {drift['deterministic'][i + 1]:13.3f}")
print(f"final samples: drift marginal {drift['marginal'][-1]:.3f}, partial {drift['partial'][-1]:.3f}, "
      f"deterministic {drift['deterministic'][-1]:.3f}")
assert drift["marginal"][-1] > drift["deterministic"][-1] and drift["partial"][-1] > drift["deterministic"][-1]
fig, ax = plt.subplots(figsize=(7, 3.4))
for name, _ in corrections:
    ax.plot(range(len(ts)), drift[name], label=name)
ax.set(xlabel="steps taken (of 50)", ylabel="rms distance to the exact network's path",
       title="How far the wrong network pushes each sample off its course")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **What reuse buys: each sample ends near its course.** With the marginal correction an error in
# $\hat x_0$ enters $x_{t-1}$ with weight $\sqrt{\bar\alpha_{t-1}}$, which is small early and close to 1 over
# the last steps: its drift stays near 0.1-0.17 while $\bar\alpha$ is small and climbs over the last ten
# steps. With the deterministic correction the estimate enters with the much smaller $A_t$, and $x_t$
# carries the rest; $x_t$ is then the quantity that goes wrong: half-way (around step 32, where $x_t$ is
# still mostly noise) the wrong network's deterministic path is 0.78 from the exact one, and the last
# steps bring it back. It ends 0.13 from the exact network's path, the marginal and partial ones 0.45 and
# 0.47 away. That is what makes a deterministic sampler a map from noise to image that a small error in
# the network moves little in the end, and a map that can be run backwards (inversion, notebook 02).
#
# **What it costs: an error, once made, is never forgotten.** Staying on course is not the same as
# reaching the data. The wrong network's error is systematic (it always leaves 10% of the noise in), and
# the deterministic correction keeps every bit of it; fresh noise replaces part of $x_t$ at every step
# and with it part of the error made so far, so the stochastic corrections land closer to the data even
# though each sample ends further from "its" exact path. This is the same trade the MNIST network shows in
# `benchmarks/results/mnist_table.md`: DDIM with $\eta = 1$ reaches a lower FID than with $\eta = 0$
# at every step count (6.2 against 16.1 at 50 steps). Karras et al. make the same observation for EDM's
# stochastic sampler: fresh noise lets the sampler forget errors made earlier [EDM §4].

# %%
import re
from pathlib import Path

table = results_table("mnist_table")
fid = {(m[1], int(m[2])): float(m[3]) for m in re.finditer(r"^\| ddim \| (\d) \| (\d+) \| \d+ \| ([\d.]+) \|", table, re.M)}
print("MNIST FID, DDIM eta = 0 | eta = 1:", {k: (fid[("0", k)], fid[("1", k)]) for k in (10, 20, 50, 100)})
assert all(fid[("1", k)] < fid[("0", k)] for k in (10, 20, 50, 100))
peak = int(drift["deterministic"].argmax())
print(f"deterministic drift: largest {drift['deterministic'][peak]:.2f} after step {peak}")
assert 30 <= peak <= 35 and abs(drift["deterministic"][peak] - 0.78) < 0.01 and float(drift["marginal"][1:40].max()) < 0.18
assert abs(drift["deterministic"][-1] - 0.13) < 0.005 and all(abs(drift[n][-1] - v) < 0.005 for n, v in
                                                               (("marginal", 0.445), ("partial", 0.469)))

# %% [markdown]
# ### Move it yourself: how much noise to replace
#
# The same wrong network (90% of the exact noise) in an explorer. The menu holds the three corrections;
# with "EC partial" the slider $\eta$ sets the fresh share of the noise as in DDIM:
# $\tilde\sigma_t = \eta\,\sqrt{(1-\bar\alpha_{t-1})/(1-\bar\alpha_t)}\,\sqrt{1-\bar\alpha_t/\bar\alpha_{t-1}}$, so
# $\eta = 0$ is the deterministic correction and $\eta = 1$ draws DDPM's posterior noise. Left: 64 paths
# from $x_T$ (grey) to $x_0$ (red); right: 2000 samples on the eight Gaussians; the title gives the
# per-mode Fréchet distance (the sliced Wasserstein distance next to it is dominated by sampling noise at
# 2000 points: two exact sample sets are 0.16 apart). Try $\eta$ from 0 up at 50 steps, then the
# deterministic correction at 10, 50 and 200 steps.

# %%
explorer = Explorer2D(eps_under, sched, reference=mix, sampler="ec-partial", eta=0.5, steps=50,
                      samplers=["ec-marginal", "ec-deterministic", "ec-partial"], threads=2)
explorer.widget()

# %% [markdown]
# The same, measured, for a reader without a kernel: per-mode Fréchet distance against $\eta$ for EC partial,
# with the marginal correction (all noise fresh) as a line, at 20 and 50 steps, and the deterministic
# correction as the steps grow.

# %%
probe = explorer.twin()        # same network, noise and cache; the explorer above keeps its settings


def frechet_at(**settings):
    probe.set(**settings)
    return float(probe.last.metrics["per_mode_frechet"])


etas, step_counts, det_steps = (0.0, 0.25, 0.5, 0.75, 1.0), (20, 50), (10, 20, 50, 100, 200)
by_eta = {(k, eta): frechet_at(sampler="ec-partial", eta=eta, steps=k) for k in step_counts for eta in etas}
by_eta_marginal = {k: frechet_at(sampler="ec-marginal", steps=k) for k in step_counts}
by_steps = {k: frechet_at(sampler="ec-deterministic", steps=k) for k in det_steps}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for k, colour in zip(step_counts, ("C0", "C1")):
    axes[0].plot(etas, [by_eta[k, eta] for eta in etas], "o-", color=colour, label=f"EC partial, {k} steps")
    axes[0].axhline(by_eta_marginal[k], color=colour, ls="--", lw=1, label=f"EC marginal, {k} steps")
axes[0].set(yscale="log", xlabel="eta (0: deterministic, 1: DDPM's noise)", ylabel="per-mode Fréchet",
            title="The wrong network: more fresh noise, closer to the data")
axes[0].legend(fontsize=8)
axes[1].plot(det_steps, [by_steps[k] for k in det_steps], "o-", color="C2")
axes[1].set(xscale="log", yscale="log", xlabel="steps", ylabel="per-mode Fréchet",
            title="EC deterministic: more steps do not help")
plt.tight_layout()
plt.show()
for k in step_counts:
    print(f"{k} steps: partial", ", ".join(f"eta {eta}: {by_eta[k, eta]:.4f}" for eta in etas),
          f"| marginal {by_eta_marginal[k]:.4f}")
print("deterministic:", ", ".join(f"{k} steps {v:.4f}" for k, v in by_steps.items()))

# %% [markdown]
# The deterministic correction at 50 steps, as the explorer draws it:

# %%
probe.set(sampler="ec-deterministic", steps=50)
probe.fig

# %% [markdown]
# **Reading it.** On the left, the wrong network favours fresh noise: at 50 steps the per-mode distance
# falls from 0.0118 with $\eta = 0$ (the deterministic correction) to 0.0002 at $\eta = 0.75$, below the
# marginal correction's 0.0024, and rises a little at $\eta = 1$; at 20 steps the curve has the same
# shape. Some reuse and mostly fresh noise is best for this network: the trade of Q4 in one curve.
#
# On the right is a surprise: the deterministic correction is *worse* with 200 steps than with 20. More
# steps should only make a sampler more accurate, so accurate at what? Measure the width of the modes
# the samples form (the rms distance of each sample to its nearest centre, per coordinate; the data's
# is 0.10) for the wrong network and the exact one, DDIM $\eta = 0$, same $x_T$:

# %%
def spread(x):
    """Per-coordinate rms distance of each sample to the centre of its nearest mode."""
    return (x - mix.means[torch.cdist(x, mix.means).argmin(1)]).pow(2).mean().sqrt().item()


eps_exact = mix.eps_model(sched)
print("steps   spread: exact network   10% too small   (the data: 0.10)")
spreads = {}
for k in (10, 20, 50, 200):
    spreads[k] = tuple(spread(d.sample_ddim(eps, sched, x_T, k, eta=0.0, record=False).x) for eps in (eps_exact, eps_under))
    print(f"{k:5d}   {spreads[k][0]:22.3f}   {spreads[k][1]:13.3f}")

# %% [markdown]
# As the steps grow, both columns converge to the solution of their own ODE: the exact network's to the
# data (0.094 at 200 steps), the wrong network's to modes 70% too wide (0.17): that ODE leaves 10% of
# the noise in at every $\sigma$. With few steps DDIM adds its own discretisation error. At 10 steps it is
# large and widens every mode (0.17 even for the exact network); at 20 to 50 steps it *narrows* them (the
# exact network's 0.083 and 0.086). For the wrong network, at 20 steps the narrowing and its own widening
# pull in opposite directions and partly cancel; more steps remove the lucky cancellation and leave the
# network's own error. The deterministic sampler is accurate at solving the *wrong network's*
# ODE, and more steps make it more so. The same happens to EDM's Heun sampler on a trained UNet
# (notebook 02, section 5).

# %%
assert by_eta[50, 0.75] < by_eta_marginal[50] < by_eta[50, 0.0] and by_eta[20, 0.75] < by_eta_marginal[20] < by_eta[20, 0.0]
assert by_steps[200] > by_steps[50] > by_steps[20] < by_steps[10]
assert spreads[200][1] > 1.5 * spreads[200][0] and spreads[20][0] < spreads[200][0] and spreads[20][1] < spreads[200][1]
assert abs(spreads[200][0] - 0.10) < 0.01

# %% [markdown]
# ## 5. The estimate: what it is trained to be, and what the loop uses
#
# ### Q5 ([UDM] eq. 4-6): where does the training objective come from?
#
# > *"Eq. 5 is a cross-entropy and eq. 6 is a weighted squared error; the code trains with a plain squared
# > error (`x0_loss`). How do these fit together?"*
#
# The post models the estimate as a Gaussian, $q(x_0\mid x_t) = N(x_0; \mathcal G_t(x_t), \bar\sigma_t^2 I)$
# (eq. 4), and trains it by cross-entropy, $\mathbb E[-\log q(x_0\mid x_t)]$ over data and $x_t = \mathcal F_t(x_0,
# \epsilon)$ (eq. 5). The negative log of a Gaussian is a squared error over $2\bar\sigma_t^2$ plus a constant,
# so eq. 5 is the weighted MSE of eq. 6. `x0_loss` averages the same squared error over coordinates and over
# $t$, with weight $2\bar\sigma_t^2/d$ in place of 1. For each $t$ the weight is a positive constant, so it
# moves no minimiser: every $\mathcal G_t$ is still trained towards $\mathbb E[x_0\mid x_t]$. The variance
# $\bar\sigma_t^2$ is not trained; the cross-entropy picks it afterwards as the squared error per coordinate.
# As the author says in the thread, eq. 4 is there to read the loss as $-\log q(x_0\mid x_t)$. That reading
# extends it to any data type. For discrete $x_0$ the Gaussian becomes a categorical model and the MSE a
# cross-entropy.

# %%
obj = sym_unified.udm_training_objective()
obj.show()
assert obj.verify() == []

# %% [markdown]
# The same facts, measured on the exact mixture at three times: the squared error per coordinate of the mean
# $\mathbb E[x_0\mid x_t]$ (what a network trained with `x0_loss` learns) and of one posterior sample. The
# sample's error is twice the mean's, $\mathbb E\|x_0 - \hat x_0\|^2 = 2\,\mathbb E\,\mathrm{tr\,Var}(x_0\mid x_t)$
# against once, so the MSE prefers the mean. The mean's error per coordinate is the $\bar\sigma_t^2$ that
# eq. 4 would use.

# %%
g = torch.Generator().manual_seed(2)
x0_data = mix.sample(20_000, g)
print("   t   MSE of the mean = sigma_bar_t^2   MSE of a posterior sample   ratio")
for t in (100, 400, 800):
    ab_t = sched.alpha_bar[t].item()
    x_t = forward.F(x0_data, torch.randn(x0_data.shape, generator=g, dtype=torch.float64), t)
    mean_est = x0_model(x_t, torch.full((len(x_t),), t))
    draw_est = mix.posterior_sample(x_t / ab_t**0.5, ((1 - ab_t) / ab_t) ** 0.5, g)
    mse_mean, mse_draw = ((mean_est - x0_data) ** 2).mean().item(), ((draw_est - x0_data) ** 2).mean().item()
    print(f"{t:4d}   {mse_mean:29.4f}   {mse_draw:25.4f}   {mse_draw / mse_mean:5.2f}")
    assert mse_mean < mse_draw and abs(mse_draw / mse_mean - 2) < 0.15

# %% [markdown]
# ### Q6 ([UDM] eq. 3): is $\hat x_0$ a sample from $p(x_0\mid x_t)$, or its mean?
#
# > *"Eq. 3 draws $\hat x_0 \sim p(x_0\mid x_t)$, but every sampler here plugs in one number per $x_t$. Which is
# > it, and does it matter?"*
#
# **What the loop does.** `sample_estimate_correct` uses whatever `x0_model` returns. Every model in this
# course returns the *mean*: the exact mixture's `denoiser`, and any network trained with `x0_loss` or the
# $\epsilon$-loss (Q5). So the loop runs eq. 3 with $p(x_0\mid x_t)$ replaced by a point mass at its mean.
#
# **Why that is allowed, and when.** With exact posterior *samples*, eq. 2-3 are exact at any step size. The
# pair $(\hat x_0, x_t)$ then has the joint $q(x_0, x_t)$, and any correction that keeps eq. 7 gives
# $x_{t-1} \sim q(x_{t-1})$. One step from $x_T$ straight to $t = 0$ would then be a perfect sampler.
# But a sampler of $p(x_0\mid x_t)$ is a generative model of the data, the very thing we are building.
# The mean is what a network can learn. Using it is an approximation, and it is good when $x_{t-1}$ depends
# little on $\hat x_0$: the weight $A_t$ of Q4 is small for small steps. The error then stays small, and
# in the limit the deterministic loop is the probability-flow ODE (notebook 04). The experiment: on the
# two-mode 1-D mixture, start from exact samples of $q(x_T)$, take the deterministic correction, and compare
# one step with a posterior sample against one step and several steps with the mean.

# %%
mix1 = d.GaussianMixture.two_gaussians_1d()
g = torch.Generator().manual_seed(3)
n1 = 20_000
x_T1 = forward.F(mix1.sample(n1, g), torch.randn(n1, 1, generator=g, dtype=torch.float64), 1000)  # exactly q(x_T)
reference = mix1.sample(n1, g)
mean_model = d.x0_model_from_eps(mix1.eps_model(sched), sched)


def sample_model(x, t):
    """x0_hat ~ p(x_0 | x_t), exactly: the mixture's posterior at noise level sigma_t."""
    ab_t = sched.alpha_bar[t].to(x.dtype)
    return mix1.posterior_sample(x / ab_t.sqrt()[:, None], ((1 - ab_t) / ab_t).sqrt(), g)


def w1(a, b):
    """The 1-D Wasserstein-1 distance between two equal-size samples: mean gap of the sorted values."""
    return (a.sort(0).values - b.sort(0).values).abs().mean().item()


runs = {}
for label, model, steps in (("sample", sample_model, 1), ("sample", sample_model, 2), ("mean", mean_model, 1),
                            ("mean", mean_model, 5), ("mean", mean_model, 50)):
    grid = d.ddim_timesteps(1000, steps, "trailing")              # 1000, ..., 0
    runs[f"{steps} step{'s' * (steps > 1)}, {label}"] = d.sample_estimate_correct(model, forward, grid, x_T1,
                                                                               "deterministic").x
dist = {name: w1(x, reference) for name, x in runs.items()}
floor = w1(mix1.sample(n1, g), reference)
for name, value in dist.items():
    print(f"{name:18s} W1 to the data {value:.3f}")
print(f"{'two data samples':18s} W1 {floor:.3f} (the sampling noise)")
assert dist["1 step, sample"] < 2 * floor and dist["2 steps, sample"] < 2 * floor
assert dist["1 step, mean"] > 0.5 > dist["5 steps, mean"] > dist["50 steps, mean"]
between = {name: float((x.abs() < 0.5).double().mean()) for name, x in (("data", reference), *runs.items())}
print("share of points between the modes (|x| < 0.5):", {k: round(v, 3) for k, v in between.items()})
assert between["5 steps, mean"] > 4 * between["data"] and between["50 steps, mean"] < 1.3 * between["data"]

edges = torch.linspace(-2.2, 2.2, 89)
x_line = edges[:, None].double()
fig, axes = plt.subplots(1, 4, figsize=(12, 3.1), sharey=True)
for ax, name in zip(axes, ("1 step, sample", "1 step, mean", "5 steps, mean", "50 steps, mean")):
    ax.hist(runs[name].squeeze(1).clamp(-2.2, 2.2).numpy(), bins=edges.numpy(), density=True, alpha=0.6)
    ax.plot(x_line.squeeze(1), mix1.log_prob(x_line).exp(), "k", lw=1)
    ax.set(title=f"{name}\nW1 {dist[name]:.3f}", xlabel="x_0", ylim=(0, 1.5))
axes[1].annotate("all points here\n(bar clipped)", (0, 1.45), xytext=(0.35, 1.2), fontsize=8, arrowprops=dict(arrowstyle="->"))
axes[0].set_ylabel("density")
plt.suptitle("From exact x_T to x_0: a posterior sample is exact in one step; the mean needs many small steps")
plt.tight_layout()
plt.show()

# %% [markdown]
# One step with a posterior sample lands on the data (the black curve): its distance to the data is the
# sampling noise. One step with the mean puts every point near the average of $p(x_0\mid x_T)$, which is
# close to 0 and lies between the two modes (its bar is clipped in the figure). Five steps with the mean find
# both modes but leave a band of points between them (a quarter of the points lie within 0.5 of the centre,
# against 5% of the data; printed above), the trace of the first large step. Fifty steps come close to the data. The loop uses the mean because that is what can be learned, and
# the small steps are what make it work.

# %% [markdown]
# ## 6. A corruption with no noise: blur
#
# `diffedu.Blur(T, std_max)` blurs with a Gaussian kernel whose width grows with $t$ (std $= 0.6\,t$ pixels
# here, $T = 10$). There is no $\epsilon$: $\mathcal F_t(x_0, r) = A_t(x_0) + r$, and "solving for the noise"
# means taking the residual $r = x_t - A_t(\hat x_0)$. The deterministic correction
# $x_{t-1} = x_t - A_t(\hat x_0) + A_{t-1}(\hat x_0)$ is cold diffusion's sampler [Cold]; the
# marginal one, $x_{t-1} = A_{t-1}(\hat x_0)$, is its naive version.
#
# We train a small x0-predictor on 8x8 digits for this blur (half a minute on a CPU) and use the *same*
# `sample_estimate_correct` twice: to restore held-out digits from a partial blur, and to generate new
# digits from the fully blurred state.

# %%
# NBVAL_IGNORE_OUTPUT
# Training log: the loss values depend on the CPU's floating-point kernels, so nbval does not compare them.
import time

from diffedu import assets
from diffedu.data import digits
from diffedu.metrics import digits_fid, recognisable_rate

images, labels = digits(8)
train_x, test_x, test_y = images[:1500], images[1500:1756], labels[1500:1756]   # 256 digits never trained on
blur = d.Blur(T=10, std_max=6.0)
torch.manual_seed(0)
net = d.UNet(in_channels=1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention=False)
opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
g = torch.Generator().manual_seed(0)
start = time.perf_counter()
for step in range(600):
    batch = train_x[torch.randint(len(train_x), (128,), generator=g)]
    loss = d.x0_loss(net, blur, batch, generator=g)     # [UDM eq. 5] with F_t = A_t, no noise
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 150 == 0 or step == 599:
        print(f"step {step:4d}  loss {loss.item():.4f}  {time.perf_counter() - start:5.1f} s")
net.eval()
clf = assets.load_classifier()                          # the shipped 8x8 digits classifier


def laplacian_energy(x):
    """Mean squared 5-point Laplacian: how much fine detail (edges) an image batch has."""
    x = x.clamp(-1, 1)
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return lap.pow(2).mean().item()

# %% [markdown]
# ### Restoring: from a partial blur back to the digit
#
# Blur the 256 held-out digits to $t = 3$ (std 1.8 pixels), then run the loop from there with each
# correction, and compare with a single jump $\hat x_0(x_3, 3)$. Four numbers per method: the mean squared
# error to the true digit; the share the digits classifier reads confidently (recognisable); the share it
# reads as the *right* digit (class accuracy); and the fine detail left, the Laplacian energy relative to the
# true digits' (1 = as sharp as real digits). Under the strips, the error maps $|x - x_0|$ (white: an error
# of 1 or more).

# %%
# NBVAL_IGNORE_OUTPUT
# Scores of a network trained above: they depend on the CPU's floating-point kernels; the cell after the
# reading asserts them.
t_start = 3
x_start = blur.A(test_x, t_start)
with torch.no_grad():
    restored = {c: d.sample_estimate_correct(net, blur, range(t_start, -1, -1), x_start, c).x
                for c in ("marginal", "deterministic")}
    restored["one jump"] = net(x_start, torch.full((len(test_x),), t_start))
restored = {"blurred x_3": x_start, **restored}
scores = {}
for name, x in restored.items():
    with torch.no_grad():
        read = clf(x.clamp(-1, 1).float()).argmax(1)
    scores[name] = dict(mse=((x - test_x) ** 2).mean().item(), recognisable=recognisable_rate(x, clf),
                        accuracy=(read == test_y).double().mean().item(),
                        detail=laplacian_energy(x) / laplacian_energy(test_x))
    print(f"{name:14s} mean squared error {scores[name]['mse']:.3f}   recognisable {scores[name]['recognisable']:.2f}   "
          f"class accuracy {scores[name]['accuracy']:.2f}   detail {scores[name]['detail']:.2f}")

rows = [("truth x_0", test_x)] + [(name, x) for name, x in restored.items()]
fig, axes = plt.subplots(2 * len(rows) - 1, 1, figsize=(10, 9))
strip = lambda x: torch.cat(list(x[:16, 0]), dim=1)
for i, (name, x) in enumerate(rows):
    axes[i].imshow(strip(x.clamp(-1, 1)), cmap="gray", vmin=-1, vmax=1)
    axes[i].set_ylabel(name, rotation=0, ha="right", va="center")
for i, (name, x) in enumerate(rows[1:]):
    ax = axes[len(rows) + i]
    ax.imshow(strip((x.clamp(-1, 1) - test_x).abs()), cmap="magma", vmin=0, vmax=1)
    ax.set_ylabel(f"|error| {name}", rotation=0, ha="right", va="center")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].set_title("Restoring held-out digits from a blur (t = 3) with one estimate-then-correct loop (16 of 256)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Reading it.** The numbers disagree about the winner, and the disagreement is the lesson. By squared
# error the single jump is best (0.063 against 0.073 for the deterministic loop and 0.090 for the marginal
# one): a network trained on squared error predicts the *mean* of all digits that blur to the same picture,
# and the mean is what squared error rewards. But a mean of several digits is a softer digit: the jump keeps
# 73% of the real digits' fine detail and the classifier recognises 55% of its outputs, against 85% and 72%
# for the deterministic loop, which is also right at least as often (87% against 84%). The loop un-blurs a
# little at a time, and each step's residual $x_t - A_t(\hat x_0)$ carries what the estimate got wrong into
# the next, easier step; that is cold diffusion's whole trick. The marginal correction throws the residual
# away and re-blurs its estimate from scratch at every level: it is behind the deterministic loop on all
# four counts (0.090, 70%, 84%, 82%), if narrowly on the last three. In the error maps the jump's errors are
# spread thin over every stroke (a grey, uncertain digit); the loops' are fewer and sharper (a committed
# digit, sometimes committed to a wrong stroke).

# %%
sc = scores
assert sc["one jump"]["mse"] < sc["deterministic"]["mse"] < sc["marginal"]["mse"] < sc["blurred x_3"]["mse"]
assert sc["deterministic"]["recognisable"] > sc["marginal"]["recognisable"] > sc["one jump"]["recognisable"] + 0.1
assert sc["deterministic"]["accuracy"] >= sc["one jump"]["accuracy"] and sc["deterministic"]["accuracy"] > sc["marginal"]["accuracy"]
assert sc["one jump"]["detail"] < sc["deterministic"]["detail"] - 0.05 and sc["marginal"]["detail"] < sc["deterministic"]["detail"]
stated = {"one jump": (0.063, 0.55, 0.84, 0.73), "deterministic": (0.073, 0.72, 0.87, 0.85), "marginal": (0.090, 0.70, 0.84, 0.82)}
for name, numbers in stated.items():      # the prose's numbers, as measured on this course's 2-core CPU
    assert all(abs(sc[name][k] - v) < 0.02 for k, v in zip(("mse", "recognisable", "accuracy", "detail"), numbers)), sc[name]

# %% [markdown]
# ### Generating: from the fully blurred state, plus a little noise
#
# At $t = T$ the kernel is so wide that every digit becomes a nearly constant grey (the pixels of one
# $A_T(x_0)$ differ by 0.03 on average, printed below): all that is left of a digit is its mean brightness.
# So a new $x_T$ is easy to draw: a constant image whose brightness is drawn from the training digits'
# $A_T$ means (cold diffusion fits a Gaussian mixture to them [Cold §5]; one Gaussian does here). Then run
# the same loop from $t = T$. The loop is deterministic, so a constant start has only one degree of
# freedom; cold diffusion adds a small Gaussian perturbation to $x_T$ to break the symmetry. We try no
# noise and noise of std 0.02 (the pixel range is $[-1, 1]$).

# %%
# NBVAL_IGNORE_OUTPUT
# As above: the printed scores depend on the network trained in this notebook; the next cell asserts them.
A_T = blur.A(train_x, blur.T)
means = A_T.flatten(1).mean(1)
print(f"A_T(x_0) of the training digits: within-image pixel std {A_T.flatten(1).std(1).mean():.3f}, "
      f"image means {means.mean():.3f} ± {means.std():.3f}")
n = 256
g = torch.Generator().manual_seed(1)
brightness = (means.mean() + means.std() * torch.randn(n, generator=g)).reshape(n, 1, 1, 1)
perturbation = torch.randn(n, 1, 8, 8, generator=g)
generated, gen_scores = {}, {}
for noise in (0.0, 0.02):
    x_T = (brightness + noise * perturbation).expand(n, 1, 8, 8).contiguous()
    for c in ("marginal", "deterministic"):
        with torch.no_grad():
            x = generated[(c, noise)] = d.sample_estimate_correct(net, blur, range(blur.T, -1, -1), x_T, c).x
            classes = torch.bincount(clf(x.clamp(-1, 1).float()).argmax(1), minlength=10)
        gen_scores[(c, noise)] = dict(fid=digits_fid(x, clf), recognisable=recognisable_rate(x, clf),
                                      classes=int((classes > 0).sum()), top=classes.max().item() / n)
        r = gen_scores[(c, noise)]
        print(f"x_T noise {noise:4g}, {c:13s}: digits FID {r['fid']:6.1f}   recognisable {r['recognisable']:.2f}   "
              f"classes seen {r['classes']:2d}   most common class {r['top']:.0%}")
fig, axes = plt.subplots(4, 1, figsize=(10, 4.4))
for ax, ((c, noise), x) in zip(axes, generated.items()):
    ax.imshow(torch.cat(list(x[:24, 0].clamp(-1, 1)), dim=1), cmap="gray", vmin=-1, vmax=1)
    ax.set(xticks=[], yticks=[])
    ax.set_ylabel(f"{c}\nnoise {noise:g}", rotation=0, ha="right", va="center", fontsize=8)
axes[0].set_title("Generating 8x8 digits from the fully blurred state (24 of 256 per row)")
plt.tight_layout()
plt.show()

# %% [markdown]
# **Reading it.** Without the perturbation each loop has only the brightness to choose with: the marginal
# loop draws nearly the same stroke every time (75% of its samples one class, 2% recognisable), the
# deterministic one a handful of shapes (five classes seen, 47% one class). With a perturbation of std 0.02,
# invisible in $x_T$, the deterministic loop draws all ten classes (the most common one 15%), and its digits
# FID falls from 133.6 to 36.8. The marginal loop throws the residual away at every level, and with it most
# of the perturbation: nine classes, recognisable but repetitive digits (39% one class), FID 125. Generation
# by un-blurring works, but it is weak: 31% of the deterministic loop's digits are recognisable, against 83%
# for the shipped 8x8 noise-diffusion UNet with DDIM 50 (`benchmarks/results/fid_table.md`). The blur loop's
# only randomness is the perturbation drawn once at the start; the Gaussian samplers of the other sections
# draw on a noise level that is set by the process at every step.

# %%
gs = gen_scores
assert gs[("deterministic", 0.02)]["classes"] == 10 and gs[("deterministic", 0.0)]["classes"] <= 5
assert gs[("deterministic", 0.02)]["fid"] < 0.5 * min(r["fid"] for key, r in gs.items() if key != ("deterministic", 0.02))
assert gs[("marginal", 0.0)]["top"] > 0.6 and gs[("deterministic", 0.0)]["top"] > 0.4 > 0.2 > gs[("deterministic", 0.02)]["top"]
assert 0.2 < gs[("deterministic", 0.02)]["recognisable"] < 0.4 and gs[("marginal", 0.0)]["recognisable"] < 0.1
fid_table = results_table("fid_table")
assert "| ddim | 0 | 50 | 50 | 3.249 | 0.831 |" in fid_table      # the 8x8 UNet's row quoted above

