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
# # 02 · DDIM: the σ/η family, skipping steps, and why it is faster
#
# **The question.** DDPM needs all $T = 1000$ steps. DDIM samples the same model in 50, or 10,
# and with $\eta = 0$ it is deterministic. Why is that allowed, and what does $\eta$ do?
#
# **By the end you can** derive DDIM's update by undetermined coefficients, write the
# $\sigma(\eta)$ family, show that $\eta = 1$ is DDPM and $\eta = 0$ deterministic, answer the two
# open questions of the DDIM notes (why $x_{prev}$ may replace $x_{t-1}$; why $\sigma = 0$ is allowed)
# with derivations and an experiment, move sliders for $\eta$ and the step count over live
# trajectories, measure why DDIM is faster, invert an image to noise and back, and answer the
# homework's question on DDPM against DDIM, including what its reference answer gets wrong.
#
# **Sources.** The derivation follows the DDIM notes ([DDIM notes], a Chinese blog post, 《DDIM推导笔记》;
# their equation numbers below are the notes' own); the paper is [DDIM] (equation numbers of arXiv
# 2010.02502); the homework question is [HW6] Q2.
#
# | here | [DDIM notes] | [DDIM] |
# | --- | --- | --- |
# | 1. undetermined coefficients | eq. 1-6 (ansatz, merging, matching), eq. 9 (the update) | eq. 7, 12 |
# | 2. the σ(η) family | its $\sigma_{\tau_i}(\eta)$; "η = 1 is DDPM" | eq. 16 |
# | 3. Q1: why may $x_{prev}$ replace $x_{t-1}$? | eq. 11 and its question Q1 (为什么可以用 $x_{prev}$ 替代 $x_{t-1}$) | Lemma 1, Thm. 1, eq. 5-7, §4.2 |
# | 3. Q2: why may σ = 0? | its question Q2 (为什么可以令方差 σ = 0) | §4.1, §4.3, eq. 13-14 |
# | 5. why is DDIM faster? | the introduction (跳步, skipping steps) | §4.2, §5.1 |
# | 6. inversion | – | §4.3, §5 (reconstruction from $x_T$) |
# | 7. DDPM against DDIM | – | [HW6] Q2 and its reference answer |
#
# **Exercises** stand where their answer is needed, *before* the notebook shows it. Each answer
# cell starts unanswered (`None`) and its check says so. Write your answer and run the cell: the
# check says whether you are right and, if not, where your answer differs (the symbol values, the
# input, the first entry that disagrees), with a hint. The collapsed cell under each exercise shows
# the reference: open it after you have tried. Every later cell runs whether or not you answered.

# %%
import time

import matplotlib.pyplot as plt
import sympy as sp
import torch

import diffedu as d
from diffedu.course import results_table
from diffedu import assets
from diffedu import symbolic as S
from diffedu.symbolic.ddim import ddim_marginals_only
from diffedu.widgets import Compare, Explorer2D, ImageExplorer
from IPython.display import Markdown
from diffedu.exercises import EXERCISES

torch.set_num_threads(2)
IMAGE_N, IMAGE_STEPS = 8, 20    # the MNIST image explorer's defaults: a new figure within 1.5 s on 2 CPU cores
s = S.symbols()
mix = d.GaussianMixture.eight_gaussians()
sched = d.Schedule(d.linear_betas(1000))

# %% [markdown]
# ## 1. Undetermined coefficients (待定系数)
#
# The DDIM notes never write down $q(x_t \mid x_{t-1})$. They *assume* a Gaussian
# [DDIM notes eq. 1]
# $$q_\sigma(x_{prev} \mid x_t, x_0) = \mathcal N(k\,x_0 + m\,x_t,\; \sigma^2 I)$$
# and ask only that it keeps the marginal (边缘分布) $q(x_{prev}\mid x_0) = \mathcal N(\sqrt{\bar\alpha_{prev}}x_0,
# (1-\bar\alpha_{prev})I)$ for every $x_0$. That gives two equations, one for the mean and one for the
# variance, in the two unknowns $k, m$ [DDIM notes eq. 6; DDIM eq. 7]. Solve them yourself before
# the derivation below does: insert $x_t = \sqrt{\bar\alpha_t}x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, merge the
# two Gaussians (notebook 01), match the mean's coefficient of $x_0$ and the variance. Then choose the
# $\sigma$ that makes $\eta = 1$ DDPM, and write the step.

# %% [markdown]
# **Exercise 02.ddim_k** (symbolic). The ansatz q_sigma(x_prev | x_t, x_0) = N(k x_0 + m x_t,
# sigma^2 I) must keep q(x_prev | x_0) for every sigma: derive k in alpha_bar_t, alpha_bar_prev and
# sigma  [DDIM eq. 7, the notes' eq. 1-6]

# %%
answer = None  # a sympy expression in s = S.symbols(): s.alpha_bar_t, s.alpha_bar_prev, s.eta, s.sigma, s.x_t, ...
EXERCISES["02.ddim_k"].check(answer)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["02.ddim_k"].reveal())

# %% [markdown]
# **Exercise 02.ddim_m** (symbolic). The same ansatz: derive m, the coefficient of x_t, in
# alpha_bar_t, alpha_bar_prev and sigma  [DDIM eq. 7]

# %%
answer = None  # a sympy expression in s = S.symbols(): s.alpha_bar_t, s.alpha_bar_prev, s.eta, s.sigma, s.x_t, ...
EXERCISES["02.ddim_m"].check(answer)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["02.ddim_m"].reveal())

# %% [markdown]
# **Exercise 02.ddim_sigma** (symbolic). Derive sigma_t(eta), the noise scale of the DDIM family
# with eta = 1 the DDPM posterior's standard deviation, in alpha_bar_t, alpha_bar_prev and eta
# [DDIM eq. 16]

# %%
answer = None  # a sympy expression in s = S.symbols(): s.alpha_bar_t, s.alpha_bar_prev, s.eta, s.sigma, s.x_t, ...
EXERCISES["02.ddim_sigma"].check(answer)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["02.ddim_sigma"].reveal())

# %% [markdown]
# **Exercise 02.ddim_step** (code). Write ddim_step(x, eps_hat, alpha_bar, alpha_bar_prev, eta,
# noise) -> x_prev, one DDIM step: x0_hat, then sqrt(alpha_bar_prev) x0_hat + sqrt(1 -
# alpha_bar_prev - sigma^2) eps_hat + sigma noise  [DDIM eq. 12]

# %%
def ddim_step(x, eps_hat, alpha_bar, alpha_bar_prev, eta, noise):
    return None  # your code here


EXERCISES["02.ddim_step"].check(ddim_step)

# %% jupyter={"source_hidden": true, "outputs_hidden": true}
Markdown(EXERCISES["02.ddim_step"].reveal())

# %% [markdown]
# The derivation, step by step, ending on the update and the $\eta$ family:

# %%
ddim = S.ddim_coefficients()
ddim.show()
assert ddim.verify() == []

# %% [markdown]
# The package's `ddim_mean_coefs` and `ddim_step_coefs`, called on the same sympy symbols, are the
# expressions just derived (the registry test checks this for every coefficient function):

# %%
k_pkg, m_pkg = d.ddim_mean_coefs(s.alpha_bar_t, s.alpha_bar_prev, s.sigma)
assert S.is_zero(k_pkg - ddim.result["k"]) and S.is_zero(m_pkg - ddim.result["m"])
for pair in S.PAIRS:
    if pair.numeric in (d.ddim_mean_coefs, d.ddim_step_coefs, d.ddim_sigma):
        assert S.verify(pair) == [], pair.name
print("k, m, the update coefficients and sigma(eta) match the derivation, symbolically and at 200 float64 points")

# %% [markdown]
# ## 2. The σ(η) family: η = 1 is DDPM, η = 0 is deterministic
#
# $\sigma$ is free. Choosing $\sigma^2 = \eta^2\tilde\beta_t$ [DDIM eq. 16] gives a one-parameter family:
# at $\eta = 1$, $\sigma^2$ is DDPM's posterior variance and $k, m$ become DDPM's posterior mean
# coefficients; at $\eta = 0$ the noise term vanishes.

# %%
sigma1 = d.ddim_sigma(s.alpha_bar_t, s.alpha_bar_prev, 1)
assert S.is_zero(sigma1**2 - d.posterior_variance(s.alpha_bar_t, s.alpha_bar_prev))
k1, m1 = d.ddim_mean_coefs(s.alpha_bar_t, s.alpha_bar_prev, sigma1)
c_x0, c_xt = d.posterior_mean_coefs(s.alpha_bar_t, s.alpha_bar_prev)
assert S.is_zero(k1 - c_x0) and S.is_zero(m1 - c_xt)
assert d.ddim_sigma(s.alpha_bar_t, s.alpha_bar_prev, 0) == 0
print("eta = 1: sigma^2 = beta_tilde and (k, m) = DDPM posterior coefficients;  eta = 0: sigma = 0")

# %% [markdown]
# The same on a trajectory: DDIM with $\eta = 1$ over all 1000 steps, fed the same noises as DDPM,
# *is* DDPM with the posterior variance $\tilde\beta_t$ (`variance="beta_tilde"`; the other choice, $\beta_t$, is a different $\sigma$).

# %%
x_T = torch.randn(2000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
noises = [torch.randn(2000, 2, generator=torch.Generator().manual_seed(100 + i), dtype=torch.float64) for i in range(999)]
ddpm = d.sample_ddpm(mix.eps_model(sched), sched, x_T, variance="beta_tilde", noises=noises)
ddim_eta1 = d.sample_ddim(mix.eps_model(sched), sched, x_T, steps=1000, eta=1.0, noises=noises)
assert (ddpm.xs - ddim_eta1.xs).abs().max() < 1e-8   # float64 round-off over 1000 steps
print("DDIM(eta=1, 1000 steps) == DDPM, step by step")

# %% [markdown]
# ## 3. The DDIM notes' two open questions
#
# The notes derive the update with $x_{t-1}$, then replace $x_{t-1}$ by an arbitrary earlier
# $x_{prev}$ [DDIM notes eq. 11] and end with two questions they leave open. Both have complete
# answers.
#
# ### Q1 (DDIM notes): why may $x_{prev}$ replace $x_{t-1}$?
#
# *The notes' objection:* "the reverse derivation never uses $x_t = \sqrt{\alpha_t}\,x_{t-1} +
# \sqrt{1-\alpha_t}\,\epsilon$, but the forward process does!" The answer has two halves.
#
# **(a) The sampler needs only the marginals.** The derivation used $\bar\alpha_t$ and
# $\bar\alpha_{prev}$ and nothing else: the matching equations contain no $\alpha_t$ or $\beta_t$,
# and the marginal is kept for *any* $\bar\alpha_{prev} > \bar\alpha_t$, also over two jumps
# $t \to s \to prev$ (so over any sub-sequence $\tau$, 跳步).

# %%
oq = S.open_questions()
oq.show()
assert oq.verify() == []

# %% [markdown]
# **(b) Training never sees the joint.** The objection is right that DDPM's forward process
# $q(x_t \mid x_{t-1})$ fixes a *joint* distribution of $(x_1, \dots, x_T)$, and DDIM's step implies
# another one: the family $q_\sigma(x_{1:T} \mid x_0)$, built downwards from $x_T$ and not Markov
# [DDIM eq. 6-7]. Why may a network trained under the first be sampled under the second? Because
# the training loss $L_{\text{simple}}$ [DDPM eq. 14] is a sum over $t$ of terms that each read one
# pair $(x_0, x_t)$, with $x_t \sim q(x_t \mid x_0)$: it depends on the forward process only
# through the marginals, and every member of the family has the same ones [DDIM Lemma 1]. So
# every member has the same loss and the same minimiser $\epsilon_\theta$: DDIM's Theorem 1 (with
# weights $\gamma_t = 1$), and the reason DDIM needs no retraining. The derivation below checks
# this with Gaussian data and a linear stand-in $\epsilon_\theta(x) = a x + b$, and shows that the
# joint does depend on $\sigma$ (so it is the marginals, not the joint, that training sees).

# %%
marg = ddim_marginals_only()
marg.show()
assert marg.verify() == []

# %% [markdown]
# The package's training loss `d.l_simple` is exactly this: it draws $t$, then $x_t$ from
# $q(x_t \mid x_0)$ in one jump, never a chain of steps. Rebuilt here from the same generator through
# the derived marginal, it gives the same $x_t$ and the same value (the test
# `tests/test_symbolic_ddim_marginals.py` does this and also feeds `d.ddim_step` the true noise to
# build the σ family sample by sample).

# %%
mean_coef = sp.lambdify(s.alpha_bar_prev, marg.result["marginal_mean_coef"])
variance = sp.lambdify(s.alpha_bar_prev, marg.result["marginal_variance"])
x0_demo = mix.sample(256, torch.Generator().manual_seed(9))
seen = []
def linear_eps(x, t):  # a stand-in network that records what it is fed
    seen.append(x)
    return 0.3 * x - 0.1
loss = d.l_simple(linear_eps, sched, x0_demo, generator=torch.Generator().manual_seed(10))
g = torch.Generator().manual_seed(10)
t_drawn = torch.randint(1, sched.T + 1, (256,), generator=g)
eps_drawn = torch.randn(x0_demo.shape, generator=g, dtype=x0_demo.dtype)
ab_drawn = sched.alpha_bar[t_drawn][:, None]
x_t_derived = mean_coef(ab_drawn) * x0_demo + variance(ab_drawn) ** 0.5 * eps_drawn
assert (seen[0] - x_t_derived).abs().max() < 1e-12
assert abs(loss - ((eps_drawn - linear_eps(x_t_derived, t_drawn)) ** 2).mean()) < 1e-12
print(f"l_simple = {loss:.6f}: its x_t are draws from the derived q(x_t | x_0), to 1e-12")

# %% [markdown]
# **The marginal at an intermediate time.** If every $\eta$ keeps the marginals, then at an
# intermediate time $t$ the states $x_t$ of any DDIM run should match $q(x_t)$, and the final
# samples should match the data. On the exact mixture (exact $\epsilon$, so the only error is the
# sampler's) we can check both: the sliced Wasserstein distance between the DDIM states at $t = 501$
# and exact draws from $q(x_{501})$, and the per-mode Fréchet distance of the final samples beside the
# exact-sample floor.

# %%
from diffedu.metrics import sliced_wasserstein  # noqa: E402

n = 20000
x_T = torch.randn(n, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
exact = mix.sample(n, torch.Generator().manual_seed(2))
t_mid = 501
ab_mid = sched.alpha_bar[t_mid]
q_mid = ab_mid.sqrt() * mix.sample(n, torch.Generator().manual_seed(3)) + (1 - ab_mid).sqrt() * torch.randn(
    n, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
print(f"floor: per-mode Fréchet of exact samples {mix.per_mode_frechet(exact):.5f}")
print("eta   per-mode Fréchet   SW(x_501, q(x_501))")
for eta in (0.0, 0.5, 1.0):
    traj = d.sample_ddim(mix.eps_model(sched), sched, x_T, steps=100, eta=eta, generator=torch.Generator().manual_seed(5))
    i_mid = (traj.ts == t_mid).nonzero().item()
    sw = sliced_wasserstein(traj.xs[i_mid], q_mid, generator=torch.Generator().manual_seed(6))
    print(f"{eta:3.1f}   {mix.per_mode_frechet(traj.x):.5f}            {sw:.4f}")
    assert sw < 0.05

# %% [markdown]
# #### Experiment: one network, trained once, sampled with every sub-sequence and every η
#
# The shipped 2-D MLP (`assets.load_mlp()`) was trained once, with $L_{\text{simple}}$ on the
# eight-Gaussian mixture, and never saw a sub-sequence or an $\eta$. If training sees only the
# marginals, the one network must serve every sub-sequence $\tau$ and every $\eta$. We sample it on
# four kinds of grid at 10, 20 and 50 steps: evenly spaced (`ddim_timesteps(..., "linspace")`),
# quadratic ($\tau_i \propto i^2$, fine steps near the data, as [DDIM App. D.2] uses on CIFAR-10), and
# two random sorted subsets of $\{1, \dots, T\}$ (starting at $T$); each with $\eta = 0, 0.5, 1$, all
# from the same $x_T$ and the same per-step noise. The loop below is `sample_ddim`'s on an arbitrary
# grid (`sample_ddim` takes only the named spacings; the first check shows the two agree), and it
# makes *one* network call per step for all three $\eta$: the network does not know which member of
# the family it serves.

# %%
from diffedu.samplers.common import model_time  # noqa: E402

mlp = assets.load_mlp()
T = mlp.sched.T


def quadratic_timesteps(T, steps):
    """tau_i = round((i / steps)^2 (T - 1)) + 1, i = steps..1, then 0: fine steps near the data."""
    ts = sorted({round((i / steps) ** 2 * (T - 1)) + 1 for i in range(1, steps + 1)}, reverse=True)
    assert len(ts) == steps
    return torch.tensor(ts + [0])


def random_timesteps(T, steps, seed):
    """T, then steps - 1 distinct times drawn from 1..T-1, sorted downwards, then 0."""
    inner = torch.randperm(T - 1, generator=torch.Generator().manual_seed(seed))[: steps - 1] + 1
    return torch.cat([torch.tensor([T]), inner.sort(descending=True).values, torch.tensor([0])])


@torch.no_grad()
def sample_on_grid(eps_model, sched, x_T, ts, etas, generator=None):
    """DDIM over the grid ts (decreasing, ending at 0) for several etas at once: one network call per
    step for all of them, and the same fresh noise z for each."""
    ab = sched.alpha_bar[ts].tolist()
    xs = [x_T] * len(etas)
    for i in range(len(ts) - 1):
        batch = torch.cat(xs)
        eps_hats = eps_model(batch, model_time(int(ts[i]), batch)).chunk(len(etas))
        z = torch.randn(x_T.shape, generator=generator, dtype=x_T.dtype)
        xs = [d.ddim_step(x, e, ab[i], ab[i + 1], eta, z if eta > 0 else None)[0]
              for x, e, eta in zip(xs, eps_hats, etas)]
    return xs


x_T_mlp = torch.randn(1000, 2, generator=torch.Generator().manual_seed(11))
mine = sample_on_grid(mlp.model, mlp.sched, x_T_mlp, d.ddim_timesteps(T, 20, "linspace"), (0.0,))[0]
with torch.no_grad():
    package = d.sample_ddim(mlp.model, mlp.sched, x_T_mlp, steps=20, spacing="linspace", record=False).x
assert torch.equal(mine, package)
print("the loop is sample_ddim on the linspace grid, bit for bit")

# %%
# NBVAL_IGNORE_OUTPUT
ETAS = (0.0, 0.5, 1.0)
grids = {}
for steps in (10, 20, 50):
    grids[f"linspace, {steps}"] = d.ddim_timesteps(T, steps, "linspace")
    grids[f"quadratic, {steps}"] = quadratic_timesteps(T, steps)
    for k in (1, 2):
        grids[f"random #{k}, {steps}"] = random_timesteps(T, steps, seed=100 * steps + k)
frechet = {}
for name, ts in grids.items():
    xs = sample_on_grid(mlp.model, mlp.sched, x_T_mlp, ts, ETAS, generator=torch.Generator().manual_seed(12))
    frechet[name] = [float(mix.per_mode_frechet(x.double())) for x in xs]
floor = float(mix.per_mode_frechet(mix.sample(1000, torch.Generator().manual_seed(13))))
own = float(mix.per_mode_frechet(sample_on_grid(mlp.model, mlp.sched, x_T_mlp, d.ddim_timesteps(T, 200, "linspace"),
                                                (1.0,), generator=torch.Generator().manual_seed(14))[0].double()))
print(f"{'grid, steps':16s} {'largest jump':>12s}   " + "   ".join(f"eta={e:<4g}" for e in ETAS))
for name, ts in grids.items():
    print(f"{name:16s} {int((ts[:-1] - ts[1:]).max()):12d}   " + "   ".join(f"{v:8.4f}" for v in frechet[name]))
print(f"exact samples (floor): {floor:.4f};  the same network, 200 linspace steps, eta = 1: {own:.4f}")

fig, ax = plt.subplots(figsize=(6.2, 6.4))
values = torch.tensor(list(frechet.values()))
im = ax.imshow(values.log10(), cmap="viridis_r", aspect="auto", vmin=-2.6, vmax=-0.9)
for i, row in enumerate(values):
    for j, v in enumerate(row):
        ax.text(j, i, f"{v:.3f}", ha="center", va="center", fontsize=8, color="w" if v > 0.03 else "k")
ax.set_xticks(range(len(ETAS)), [f"η = {e:g}" for e in ETAS])
ax.set_yticks(range(len(grids)), list(grids))
for i in (3.5, 7.5):
    ax.axhline(i, color="w", lw=2)
cbar = fig.colorbar(im, ax=ax, fraction=0.05)
cbar.set_label("log10 per-mode Fréchet distance")
ax.set_title(f"One MLP, trained once: per-mode Fréchet distance\n(exact samples: {floor:.4f}; "
             f"same network, 200 steps: {own:.4f})", fontsize=10)
plt.tight_layout()
plt.show()

# %%
by_steps = {steps: [v for name, row in frechet.items() if name.endswith(f", {steps}") for v in row] for steps in (10, 20, 50)}
assert max(by_steps[50]) < 0.05                                   # every grid, every eta: close to the data at 50 steps
assert max(by_steps[50]) < 10 * own and min(by_steps[50]) < 2 * own   # and within reach of the network's own level
for name in ("linspace", "quadratic"):                             # more steps help every eta on the regular grids
    assert all(a > b for a, b in zip(frechet[f"{name}, 10"], frechet[f"{name}, 50"]))
print("all", len(by_steps[50]), "runs at 50 steps within", f"{max(by_steps[50]):.3f}", "of the data (per-mode Fréchet)")

# %% [markdown]
# **What it shows.** Every one of the 36 runs used the one network, trained once; none of them
# needed retraining, whatever the grid or $\eta$. With 50 steps every grid and every $\eta$ lands
# within a few hundredths of the data, and the best runs come close to the level the same network
# reaches with 200 steps; the remaining gap to the exact-sample floor is the network's own error,
# not the grid's. How *good* a run is depends on the size of its jumps, not on which times it
# skips: the table's "largest jump" column explains the random grids that score worse (one
# long jump), and the quadratic grid, with fine steps near the data where the mixture's modes form,
# beats the even one at 10 and 20 steps. This is Q1's answer seen in practice: the same
# $\epsilon_\theta$ serves every member of the family.
#
# ### Q2 (DDIM notes): why may σ = 0?
#
# 1. **A Dirac delta is still a distribution.** At $\sigma = 0$, $q_\sigma(x_{prev} \mid x_t, x_0) =
#    \delta\big(x_{prev} - (k x_0 + m x_t)\big)$: $x_{prev}$ is a fixed linear function of $(x_0, x_t)$.
#    Nothing in the derivation needed a density: it needed only the mean and variance of
#    $x_{prev}$ given $x_0$, and a linear map of the Gaussian $q(x_t \mid x_0)$ is Gaussian.
# 2. **The marginals are unchanged.** The identities "Q2: ..." above: the marginal variance
#    $m^2(1-\bar\alpha_t) + \sigma^2$ equals $1 - \bar\alpha_{prev}$ for every $\sigma$, 0 included, because
#    $m$ grows to take $\sigma$'s share. The cell below pushes exact draws of $q(x_t \mid x_0)$ through
#    the $\sigma = 0$ map.
# 3. **The model becomes implicit: the "I" in DDIM.** With $\sigma = 0$ at every step, $x_0$ is a
#    deterministic function of $x_T$: an *implicit* generative model (like a GAN's generator), which
#    makes samples but assigns them no likelihood through its steps [DDIM §4.1]. The variational bound
#    that DDPM trains on cannot even be written: its term $L_{t-1}$ weighs the mean error by
#    $1/(2\sigma_t^2)$ [DDPM eq. 12], which is infinite at $\sigma_t = 0$ (second cell). Training is not
#    affected, because $L_{\text{simple}}$ does not contain $\sigma$ (Q1 b).
# 4. **Its limit is the probability-flow ODE.** For small steps the $\sigma = 0$ update is one Euler
#    step of the probability-flow ODE (概率流 ODE) in $y = x/\sqrt{\bar\alpha}$ and the VE noise level
#    $\sigma^{VE} = \sqrt{(1-\bar\alpha)/\bar\alpha}$ [DDIM eq. 13-14]: notebook 04, section 4, proves it
#    (`ddim_is_euler`). That is why few large steps work best at $\eta = 0$ (section 5).
# 5. **How large may σ be?** The update's $\hat\epsilon$ coefficient is $\sqrt{1 - \bar\alpha_{prev} -
#    \sigma^2}$ [DDIM eq. 12], real only while $\sigma^2 \le 1 - \bar\alpha_{prev}$. With
#    $\sigma = \eta\,\sigma(1)$ this bounds $\eta$ by $\eta_{\max} = \sqrt{(1 - \bar\alpha_t)/(1 -
#    \bar\alpha_t/\bar\alpha_{prev})}$ (`ddim_coefficients`, last step; `ddim_max_eta` in
#    `diffedu.posterior`). $\eta_{\max} \ge 1$ always, so $\eta \in [0, 1]$ is always allowed; at
#    $\eta_{\max}$ the step throws $\hat\epsilon$ away and re-noises with fresh noise only.

# %%
# 1-2: the sigma = 0 step pushes q(x_t | x_0) onto q(x_prev | x_0)
ab_t, ab_p = float(sched.alpha_bar[700]), float(sched.alpha_bar[250])
k0, m0 = d.ddim_mean_coefs(ab_t, ab_p, 0.0)
x0_fixed = torch.full((200_000,), 0.7, dtype=torch.float64)
x_t_draws = d.q_sample(sched, x0_fixed, 700, torch.randn(200_000, generator=torch.Generator().manual_seed(15), dtype=torch.float64))
x_prev_det = k0 * x0_fixed + m0 * x_t_draws                         # the Dirac delta: no noise at all
print(f"x_prev = k x_0 + m x_t:  mean {x_prev_det.mean():.4f} (sqrt(ab_prev) x_0 = {ab_p**0.5 * 0.7:.4f}),  "
      f"var {x_prev_det.var():.4f} (1 - ab_prev = {1 - ab_p:.4f})")
assert abs(x_prev_det.mean() - ab_p**0.5 * 0.7) < 0.005 and abs(x_prev_det.var() / (1 - ab_p) - 1) < 0.01

# %%
# 3: the bound's weight 1/(2 sigma^2)-like factor grows without limit as sigma -> 0
ab_t, ab_p = float(sched.alpha_bar[500]), float(sched.alpha_bar[499])
beta_tilde = float(d.posterior_variance(ab_t, ab_p))
for scale in (1.0, 1e-2, 1e-4, 1e-8):
    print(f"sigma^2 = {scale:g} * beta_tilde:  weight of ||eps - eps_theta||^2 in L_t-1 = "
          f"{float(d.vlb_weight(ab_t, ab_p, scale * beta_tilde)):.4g}")
assert float(d.vlb_weight(ab_t, ab_p, 1e-8 * beta_tilde)) == 1e8 * float(d.vlb_weight(ab_t, ab_p, beta_tilde)) or \
    abs(float(d.vlb_weight(ab_t, ab_p, 1e-8 * beta_tilde)) / float(d.vlb_weight(ab_t, ab_p, beta_tilde)) / 1e8 - 1) < 1e-9

# %%
# 5: eta_max, per step and over a grid; past it the sampler refuses
from diffedu.posterior import ddim_max_eta  # noqa: E402
from diffedu.samplers.ddim import max_eta  # noqa: E402

assert S.is_zero(ddim_max_eta(s.alpha_bar_t, s.alpha_bar_prev) - S.ddim_coefficients().result["max_eta"])
for steps in (1000, 50, 10):
    ab_grid = sched.alpha_bar[d.ddim_timesteps(sched.T, steps)].tolist()
    print(f"{steps:4d} steps: largest eta allowed on the grid = {max_eta(ab_grid):.3f}")
    assert max_eta(ab_grid) >= 1
try:
    d.sample_ddim(mix.eps_model(sched), sched, x_T[:10], steps=10, eta=max_eta(ab_grid) + 0.01,
                  generator=torch.Generator().manual_seed(0))
    raise AssertionError("eta above eta_max was accepted")
except ValueError as err:
    print("eta above it:", err)

# %% [markdown]
# ## 4. Sliders: η, steps and sampler
#
# The noise is held fixed while you move $\eta$, so the picture changes because of $\eta$ alone.
# Left: a few particle paths from noise to data; right: the final cloud on the true density, with
# the quality numbers in the title. Try $\eta = 0$ with 5 steps, then 50; then move $\eta$ to 1.
# Of the two numbers, read the per-mode Fréchet distance: it compares each mode's mean and
# covariance with the truth. The sliced Wasserstein distance of 2,000 points is dominated by how
# many points happen to land in each mode, so even exact samples score about 0.16 against other
# exact samples (the value shown in brackets); it tells only large differences apart.

# %%
# NBVAL_IGNORE_OUTPUT
explorer = Explorer2D(mix, sched)
explorer.widget()

# %% [markdown]
# (If you are reading this without a running kernel, the sliders above are not drawn. This is
# what the explorer shows for deterministic DDIM with 10 steps; `explorer.set(...)` works in plain
# Python too and returns the figure.)

# %%
from IPython.display import Image  # noqa: E402

explorer.set(sampler="DDIM", eta=0.0, steps=10)
Image(explorer.png())

# %% [markdown]
# The same controls over the shipped MNIST UNet (28x28 digits): a strip of $x_t$ and $\hat x_0$ at a few
# times for fixed-noise samples, and the final grid. The network is class-conditional; the explorer
# samples its null class, that is the unconditional model (notebook 06 guides it towards a class).

# %%
# NBVAL_IGNORE_OUTPUT
images = ImageExplorer.from_assets("mnist", n=IMAGE_N, steps=IMAGE_STEPS, threads=2)
images.widget()

# %%
images.set(sampler="DDIM", eta=0.0, steps=IMAGE_STEPS)
Image(images.png())

# %% [markdown]
# Two settings side by side, same noise: deterministic DDIM against $\eta = 1$ at 20 steps.

# %%
# NBVAL_IGNORE_OUTPUT
Compare(Explorer2D(mix, sched), left=dict(eta=0.0, steps=20), right=dict(eta=1.0, steps=20)).widget()

# %% [markdown]
# ## 5. Why is DDIM faster?
#
# Each step costs one network call (NFE), and the network is nearly all of a step's time, so wall
# time grows in proportion to NFE. Measure it here on the shipped 8x8 digits UNet (its quality
# table below was measured on the same model; notebook 05 has the MNIST table, with a GAN row):

# %%
# NBVAL_IGNORE_OUTPUT
from diffedu.sampling import generate  # noqa: E402

unet = assets.load_digits_unet()

seconds = {}
for steps in (10, 50):
    runs = []
    for _ in range(3):                      # best of 3: other programs on the machine only ever add time
        t0 = time.perf_counter()
        generate(unet, 200, "ddim", steps=steps, generator=torch.Generator().manual_seed(7))
        runs.append(time.perf_counter() - t0)
    seconds[steps] = min(runs)
    print(f"DDIM {steps:3d} steps, 200 digits: {seconds[steps]:5.2f} s  ({1000 * seconds[steps] / steps:5.1f} ms per network call)")
print(f"5x the steps took {seconds[50] / seconds[10]:.1f}x the time")
assert seconds[50] / seconds[10] > 2.0

# %% [markdown]
# What does quality cost? The table below was measured by `benchmarks/fid_table.py` (the command
# and machine are in the file's header; it samples 1000 digits per row, which takes a quarter of an
# hour on two CPU cores, too long for this notebook). "Digits FID" is a Fréchet distance in the
# feature space of the small digit classifier shipped in `diffedu/shipped/` (**not** Inception FID:
# comparable only within this course); "recognisable" is the share of samples the classifier
# labels with probability above 0.9. The first row, real digits against real digits, is the floor.
# Notebook 05 re-measures some rows live and checks they agree with this file.

# %%
from pathlib import Path  # noqa: E402

table = results_table("fid_table")
print(table)
rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
        if line.startswith("| ") and line[2:5] in ("ddp", "ddi", "edm")]
results = [dict(sampler=r[0], eta=float(r[1]), steps=int(r[2]), nfe=int(r[3]), fid=float(r[4]),
                recognisable=float(r[5]), seconds=float(r[6])) for r in rows]

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for (sampler, eta), style in {("ddim", 0.0): "o-", ("ddim", 1.0): "s--", ("edm-euler", 0.0): "^-",
                              ("edm-heun", 0.0): "d-", ("ddpm", 1.0): "*"}.items():
    sel = [r for r in results if r["sampler"] == sampler and r["eta"] == eta]
    label = sampler + (f" eta={eta:g}" if sampler == "ddim" else "")
    axes[0].plot([r["nfe"] for r in sel], [r["fid"] for r in sel], style, label=label, ms=8)
    axes[1].plot([r["nfe"] for r in sel], [r["seconds"] for r in sel], style, label=label, ms=8)
axes[0].set(xscale="log", yscale="log", xlabel="network evaluations (NFE)", ylabel="digits FID (lower is better)",
            title="Quality against NFE, shipped digits UNet")
axes[1].set(xscale="log", yscale="log", xlabel="network evaluations (NFE)", ylabel="seconds for 1000 digits",
            title="Wall time against NFE")
floor = float(table.split("real vs real (floor) | | | | ")[1].split(" ")[0])
axes[0].axhline(floor, color="grey", ls=":", label="real vs real (floor)")
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

by = {(r["sampler"], r["eta"], r["steps"]): r for r in results}
ddpm = by[("ddpm", 1.0, 1000)]
# The homework's answer, as checks on the measured table:
assert by[("ddim", 0.0, 50)]["seconds"] < ddpm["seconds"] / 10          # 50 DDIM steps: >10x faster than DDPM
assert by[("ddim", 0.0, 10)]["fid"] < by[("ddim", 1.0, 10)]["fid"]       # with few steps, eta = 0 is the better DDIM
assert by[("ddim", 1.0, 100)]["fid"] < by[("ddim", 0.0, 100)]["fid"]     # with many, eta = 1 is
ode = [by[("ddim", 0.0, 100)]["fid"], by[("edm-heun", 0.0, 51)]["fid"]]  # two solvers of one PF-ODE ...
assert abs(ode[0] - ode[1]) < 0.3 * min(ode) and min(ode) > ddpm["fid"]   # ... agree, and stay above DDPM

# %% [markdown]
# Read it in three parts.
#
# * **Time** (right) is proportional to NFE: 50 DDIM steps cost a twentieth of DDPM's 1000.
#   Skipping is allowed because DDIM's update keeps the marginals for *any* pair of times
#   (section 3, Q1).
# * **Few steps:** with 10 calls, $\eta = 0$ beats $\eta = 1$. The deterministic update follows the
#   probability-flow ODE (notebook 04), whose smooth path large steps can follow; with $\eta = 1$ a
#   large step adds a lot of fresh noise that too few later steps can remove. Heun on Karras noise
#   levels reaches a low FID already at 21 calls.
# * **Many steps:** the deterministic samplers level off. DDIM with $\eta = 0$ at 100 steps and
#   Heun at 101 calls give nearly the same FID, so both are close to the *exact* solution of the
#   ODE for this network. That FID is still higher than DDPM's: the network's errors push the ODE
#   path off course, and nothing pulls it back. Fresh noise does pull it back; this is the point of
#   the stochastic "churn" in EDM's Algorithm 2 (notebook 04). So $\eta = 1$ with 50 to 100 steps
#   comes close to DDPM for a tenth of the time.
#
# The answer to "why is DDIM faster?" is therefore: it takes fewer, larger steps, which its
# derivation allows. How few depends on $\eta$: few steps favour $\eta = 0$, and more steps favour
# noise. Section 7 puts this together with training and the images into the homework's full answer.
#
# > **Erratum ([DDIM notes], "η = 0 works best, so DDIM sets σ = 0").** The notes write that
# > $\eta = 0$ gives the best results (当 η = 0 时,效果是最好的) and conclude that DDIM takes
# > $\sigma = 0$. Nothing in the derivation says so (every $\eta$ keeps the marginals), and it is not true
# > in general: it is a measurement, and on this course's digits UNet it holds for *few* steps only;
# > the table above shows $\eta = 1$ passing $\eta = 0$ at 50 and 100 steps. What is true is that
# > $\eta = 0$ is the better choice when steps are few (the PF-ODE's smooth path). The cell below
# > checks both directions on the measured table.

# %%
few = [by[("ddim", eta, 10)]["fid"] for eta in (0.0, 1.0)]
many = [by[("ddim", eta, 100)]["fid"] for eta in (0.0, 1.0)]
print(f"digits FID at 10 steps: eta=0 {few[0]:.2f}, eta=1 {few[1]:.2f};  at 100 steps: eta=0 {many[0]:.2f}, eta=1 {many[1]:.2f}")
assert few[0] < few[1] and many[1] < many[0]

# %% [markdown]
# ### Two things in the table that need a measurement
#
# **Heun gets worse with more calls** (digits FID 1.13 at 21 calls, 2.05 at 51, 2.55 at 101), although on
# the exact mixture it converges with order 2 (notebook 04). Two explanations are possible: Heun is not
# converging on this network, or it converges to something whose FID is 2.5. `benchmarks/ode_convergence.py`
# tells them apart (4 to 5 minutes on two cores, too long for this notebook; the cell below reads its
# table). It computes the exact solution of the PF-ODE for this network and the table's noise as well as we
# can (Heun with 401 calls) and measures, for each sampler at 11 to 101 calls, two things: its FID and
# its rms distance to that solution. Two suspected defects are ruled out: the Karras grid already stays inside the schedule's own noise range (`sched.sigma[1]` to
# `sched.sigma[T]`), and feeding the network the exact $\sigma$ of each evaluation instead of the nearest
# schedule level's (the table's "exact sigma in D" rows) changes no FID by more than 0.1.
#
# **Euler differs from DDIM at equal NFE**, although DDIM *is* Euler's method (notebook 04 proves it). The
# two runs differ in their grid, not their method: DDIM visits the "leading" times $t_i = i\lfloor T/n\rfloor + 1$
# (evenly spaced in $t$, starting below $T$: `d.ddim_timesteps(T, n)`), EDM's Euler the Karras noise levels
# $\sigma_i^{1/\rho}$ evenly spaced with $\rho = 7$. Run Euler on DDIM's own grid and it *is* DDIM.

# %%
conv_table = results_table("ode_convergence")
print(conv_table[conv_table.index("| sampler"):])
conv = {}   # (sampler, NFE) -> (FID, distance to the reference)
for line in conv_table.splitlines():
    c = [x.strip() for x in line.strip("|").split("|")]
    if len(c) == 5 and c[2].isdigit():
        conv[(c[0], int(c[2]))] = (float(c[3]), float(c[4]))
exact_fid = conv[("reference: edm-heun", 401)][0]

# live: Euler on DDIM's own 20 leading times is DDIM (200 digits of the table's noise)
sched, eps = unet.sched, unet.eps_model(unet.sched)
x_T = torch.randn(200, 1, 8, 8, generator=torch.Generator().manual_seed(0))
ts = d.ddim_timesteps(sched.T, 20)
with torch.no_grad():
    euler_on_ddim_grid = d.sample_edm(d.denoiser_from_eps(eps, sched), sched.sigma[ts].float(),
                                      x_T / sched.alpha_bar[ts[0]].sqrt().float(), "euler").x
    ddim20 = d.sample_ddim(eps, sched, x_T, steps=20, eta=0.0).x
gap = (euler_on_ddim_grid - ddim20).abs().max().item()
print(f"Euler on DDIM's 20 leading times against DDIM 20 (live, 200 digits): largest difference {gap:.1e}")

# %% [markdown]
# **Reading it.** Every deterministic sampler converges to the same solution: the distance falls as the
# calls grow, fastest for Heun (0.37, 0.083, 0.024, 0.022 at 11, 21, 51, 101 calls). That solution's FID
# is 2.54. So Heun is not getting worse at solving the ODE; it is getting *better*, and the ODE's own
# solution for this network has an FID of 2.5. The 21-call run is closer to the data than the exact
# solution is: its truncation error happens to cancel part of the network's error. That is luck, not a
# method, and it is specific to this network (we did not find a reason that would carry over to another).
# DDIM with $\eta = 0$ and Euler approach the same point more slowly (distances 0.029 and 0.036 at 101
# calls), and their FIDs fall towards the same 2.5 from above. The second-order method's advantage is
# visible in the distances, not in the FIDs: at 101 calls DDIM is still further from the solution than Heun at
# 51. Heun's
# distance stops shrinking between 51 and 101 calls (0.024 to 0.022, where order 2 predicts a quarter):
# what is left is the reference's own error and the piecewise-constant time input (the network knows only
# the 1000 integer times).
#
# And Euler on DDIM's leading grid reproduces DDIM to float32 round-off (printed above; the benchmark's header
# says the same for 1000 digits): the gap between the two in the quality table is the gap between their grids.

# %%
dist = {key: v[1] for key, v in conv.items()}
heun = [dist[("edm-heun", n)] for n in (11, 21, 51, 101)]
assert all(a > b for a, b in zip(heun, heun[1:])) and heun[2] < 0.03 and heun[3] > heun[2] / 2
assert all(dist[("edm-heun", n)] < dist[("edm-euler", n)] for n in (21, 51, 101))
assert all(dist[(m, 101)] < dist[(m, 21)] for m in ("edm-euler", "ddim eta=0"))
assert dist[("ddim eta=0", 101)] > dist[("edm-heun", 51)]
assert abs(exact_fid - by[("edm-heun", 0.0, 51)]["fid"]) < 0.6 and conv[("edm-heun", 21)][0] < 0.6 * exact_fid
assert gap < 1e-4
assert all(abs(conv[("edm-heun, exact sigma in D", n)][0] - conv[("edm-heun", n)][0]) < 0.1 for n in (21, 51, 101))
for (name, nfe), (fid, _) in conv.items():   # the benchmark's runs reproduce fid_table.md where it has the row
    if name.startswith("reference") or "exact sigma" in name:
        continue
    key = {"edm-heun": ("edm-heun", 0.0, (nfe + 1) // 2), "edm-euler": ("edm-euler", 0.0, nfe), "ddim eta=0": ("ddim", 0.0, nfe)}[name]
    if key in by:
        assert abs(fid - by[key]["fid"]) < 0.02 * by[key]["fid"] + 0.02, (key, fid, by[key]["fid"])

# %% [markdown]
# ## 6. DDIM inversion
#
# Determinism pays off: running the $\eta = 0$ update *upwards* (`d.ddim_invert`) encodes a real
# digit into a noise $x_T$, and sampling from that $x_T$ gives the digit back. With DDPM's fresh
# noise at every step there is no such map. Eight MNIST test digits (never trained on) through the
# shipped MNIST UNet, each with its own label as the class (at $w = 0$):

# %%
from diffedu.data import mnist  # noqa: E402
from diffedu.sampling import guided  # noqa: E402

mnist_unet = assets.load_mnist_unet()
x0, y0 = (v[:8] for v in mnist("test"))
eps_model = guided(mnist_unet, 8, labels=y0).eps_model()
with torch.no_grad():
    z = d.ddim_invert(eps_model, mnist_unet.sched, x0, steps=100).x
    back = d.sample_ddim(eps_model, mnist_unet.sched, z, steps=100).x
err = (back - x0).abs().mean().item()
print(f"mean |decode(encode(x0)) - x0| = {err:.2f} (pixels in [-1, 1])")
assert err < 0.1
fig, axes = plt.subplots(3, 8, figsize=(8, 3.3))
for j in range(8):
    for i, (row, label) in enumerate(((x0, "x_0"), (z, "x_T = encode"), (back, "decode"))):
        axes[i, j].imshow(row[j, 0], cmap="gray", vmin=-1 if i != 1 else None, vmax=1 if i != 1 else None)
        axes[i, j].set_xticks([])
        axes[i, j].set_yticks([])
        if j == 0:
            axes[i, j].set_ylabel(label, fontsize=8)
plt.suptitle("DDIM inversion: MNIST test digits to noise and back, 100 steps")
plt.show()

# %% [markdown]
# ## 7. HW6 Q2: how do DDPM and DDIM differ in training, inference and generated images, and why is DDIM faster?
#
# The homework [HW6] asks: "describe the differences of training, inference process, and the
# generated images of the two models respectively. Briefly explain why DDIM is faster." The
# answer, from what this notebook has derived and measured:
#
# **Training: identical.** There is no "DDIM training". DDIM is a different *sampler* for a network
# trained exactly as DDPM trains it: the same forward process $q(x_t \mid x_0)$, the same network
# $\epsilon_\theta(x_t, t)$, the same loss $L_{\text{simple}}$. It may be, because $L_{\text{simple}}$
# reads only the marginals, and every member of DDIM's family has DDPM's marginals (Q1 b,
# `ddim_marginals_only`). Every model in this notebook was trained once, with `d.l_simple`, which
# has no argument for $\eta$, $\sigma$ or a step count.
#
# **Inference.** DDPM walks all $T$ steps $t = T, \dots, 1$ of its Markov reverse chain, adding
# fresh noise $\sigma_t z$ at each ($\sigma_t^2 = \beta_t$ or $\tilde\beta_t$). DDIM walks a
# sub-sequence $\tau$ of $S \ll T$ times with the update [DDIM eq. 12]
# $x_{prev} = \sqrt{\bar\alpha_{prev}}\,\hat x_0 + \sqrt{1 - \bar\alpha_{prev} - \sigma^2}\,\hat\epsilon + \sigma z$
# and $\sigma = \sigma(\eta)$: $\eta = 1$ over all $T$ steps *is* DDPM (section 2), $\eta = 0$ is
# deterministic. Each step still predicts $\hat x_0$ and then goes only to the next time of $\tau$, not to
# $x_0$.
#
# **Generated images.** Quality at equal cost: with few steps DDIM ($\eta = 0$) is far better than
# DDPM would be (DDPM cannot skip at all; section 5's table, 10 to 50 steps); with enough steps
# $\eta = 1$ comes close to DDPM's 1000-step FID. With $\eta = 0$ the map $x_T \mapsto x_0$ is
# deterministic: the same $x_T$ gives the same image, runs with different step counts from one
# $x_T$ give nearly the same image (the ODE's solution), and the map can be run backwards to
# encode an image (section 6). DDPM's image depends on all $T$ fresh noises, not on $x_T$ alone.
#
# **Why faster.** Time is proportional to the number of network evaluations (NFE), one per step
# (section 5 measured it); DDIM needs $S$ = 10 to 100 instead of $T = 1000$, because its update keeps
# the marginals for any pair of times (Q1 a), so the same network serves the short chain (Q1 b).
# The checks:

# %%
import inspect  # noqa: E402

# training: the one loss has no sampler argument; DDIM's family leaves it unchanged
assert not {"eta", "sigma", "steps", "spacing"} & set(inspect.signature(d.l_simple).parameters)
assert marg.verify() == []


class Counted:
    """An eps-model that counts its calls (network evaluations)."""

    def __init__(self, eps_model):
        self.eps_model, self.calls = eps_model, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.eps_model(x, t)


# inference: one network call per step, for DDPM and for DDIM
with torch.no_grad():
    x_T_small = torch.randn(8, 2, generator=torch.Generator().manual_seed(16))
    counted = Counted(mlp.model)
    d.sample_ddpm(counted, mlp.sched, x_T_small, generator=torch.Generator().manual_seed(17), record=False)
    ddpm_calls, counted.calls = counted.calls, 0
    traj10 = d.sample_ddim(counted, mlp.sched, x_T_small, steps=10, record=True)
print(f"network calls: DDPM {ddpm_calls}, DDIM with 10 steps {counted.calls} (trajectory nfe {traj10.nfe}, "
      f"{len(traj10.ts)} states visited)")
assert ddpm_calls == mlp.sched.T and counted.calls == traj10.nfe == 10

# images: eta = 0 is a deterministic map of x_T; eta = 1 is not
with torch.no_grad():
    a = d.sample_ddim(mlp.model, mlp.sched, x_T_mlp, steps=50, record=False).x
    b = d.sample_ddim(mlp.model, mlp.sched, x_T_mlp, steps=50, record=False).x
    c10 = d.sample_ddim(mlp.model, mlp.sched, x_T_mlp, steps=10, record=False).x
    n1 = d.sample_ddim(mlp.model, mlp.sched, x_T_mlp, steps=50, eta=1.0, generator=torch.Generator().manual_seed(1)).x
    n2 = d.sample_ddim(mlp.model, mlp.sched, x_T_mlp, steps=50, eta=1.0, generator=torch.Generator().manual_seed(2)).x
    other = d.sample_ddim(mlp.model, mlp.sched, torch.randn(1000, 2, generator=torch.Generator().manual_seed(18)),
                          steps=50, record=False).x
gap = lambda u, w: (u - w).norm(dim=1).mean().item()  # noqa: E731
print(f"eta = 0, same x_T twice: mean distance {gap(a, b):.2g};  10 steps against 50 steps: {gap(a, c10):.3f};  "
      f"two different x_T: {gap(a, other):.3f}")
print(f"eta = 1, same x_T, different noise: {gap(n1, n2):.3f}")
assert torch.equal(a, b) and gap(a, c10) < 0.25 * gap(a, other) and gap(n1, n2) > 4 * gap(a, c10)

# %% [markdown]
# The homework's reference answer (the write-up's 参考答案) gets the speed-up right (skipping steps)
# but explains it with three statements that are wrong:
#
# > **Erratum ([HW6], reference answer to Q2: "DDIM adds implicit variables to the forward process").**
# > It says DDIM "introduces implicit variables in the forward diffusion process, which makes the
# > noising more flexible" (引入了隐式变量), and that DDIM's training differs. Training is identical,
# > and nothing is added to the forward process that training uses: $q(x_t \mid x_0)$ is DDPM's. The
# > non-Markovian family $q_\sigma$ is an argument (Q1 b), not a new training process, and "implicit"
# > names the *generative* model at $\sigma = 0$: a deterministic map from $x_T$ to $x_0$ with no
# > likelihood (Q2, point 3). The first check above and `ddim_marginals_only` show it.
#
# > **Erratum ([HW6], reference answer: "DDIM generates the clean image directly from noise").**
# > DDIM does not jump from noise to the image: it walks $S$ steps of $\tau$, each predicting
# > $\hat x_0$ and moving only to the next time, re-noised to $q(x_{prev} \mid x_0)$'s level. A single
# > jump from $x_T$ to $x_0$ is allowed by the algebra, but even with the exact model it gives
# > $\hat x_0(x_T) = \mathbb E[x_0 \mid x_T] \approx \mathbb E[x_0]$: every sample lands on the average of the
# > data (here the centre of the eight modes). With a learned network it is worse: the network's $\epsilon$
# > error is multiplied by $\sqrt{1-\bar\alpha_T}/\sqrt{\bar\alpha_T} \approx 157$ (notebook 01, Q1), and the
# > samples scatter far beyond the data. The cell below shows both.
#
# > **Erratum ([HW6], reference answer: "no forward computation is needed at every step").** It says
# > DDIM "does not need a forward computation at every step" (不需要每一步都进行前向计算). Every DDIM
# > step is one forward pass of the network (the count above: 10 steps, 10 calls); the saving is that
# > there are fewer steps, not steps without the network. (The answer also says DDPM is trained by
# > minimising the difference between the denoised and the real image; $L_{\text{simple}}$ compares the
# > predicted noise with the true noise [DDPM eq. 14].)

# %%
exact_eps = mix.eps_model(mlp.sched)       # the exact mixture: E[eps | x_t], no network error
x_T_64 = x_T_mlp.double()
with torch.no_grad():
    jump_exact = d.sample_ddim(exact_eps, mlp.sched, x_T_64, steps=1, spacing="trailing", record=False).x  # grid T, 0
    ten_exact = d.sample_ddim(exact_eps, mlp.sched, x_T_64, steps=10, record=False).x
    jump_mlp = d.sample_ddim(mlp.model, mlp.sched, x_T_mlp, steps=1, spacing="trailing", record=False).x
spread = lambda x: float(x.std(0).mean())  # noqa: E731
fd = lambda x: float(mix.per_mode_frechet(x.double()))  # noqa: E731
print(f"exact model, one jump T -> 0: per-mode Fréchet {fd(jump_exact):.3f}, spread {spread(jump_exact):.3f}, "
      f"mean ({jump_exact.mean(0)[0]:+.3f}, {jump_exact.mean(0)[1]:+.3f});  10 steps: {fd(ten_exact):.3f}, spread {spread(ten_exact):.3f}")
print(f"the MLP, one jump: spread {spread(jump_mlp):.2f} (its eps error times sqrt(1 - ab_T)/sqrt(ab_T) = "
      f"{float(((1 - mlp.sched.alpha_bar[T]) / mlp.sched.alpha_bar[T]).sqrt()):.0f});  data spread {spread(mix.sample(1000, torch.Generator().manual_seed(19))):.3f}")
assert spread(jump_exact) < 0.1 * spread(ten_exact) and float(jump_exact.mean(0).norm()) < 0.05   # all at E[x_0] = 0
assert fd(jump_exact) > 20 * fd(ten_exact) and spread(jump_mlp) > spread(ten_exact)

