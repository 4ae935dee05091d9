# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · DDPM: the forward process, the posterior, and what L_simple drops
#
# **The question.** DDPM adds a little Gaussian noise 1000 times and learns to undo it one step at
# a time. Where do its formulas come from, and how do we know the code computes them?
#
# **By the end you can** merge the one-step chain into $q(x_t \mid x_0)$, see what the linear,
# cosine and sigmoid schedules do to the signal, derive the posterior $q(x_{t-1} \mid x_t, x_0)$ by
# Bayes and completing the square, write it with $\epsilon$, see which weights of the ELBO
# $L_{simple}$ throws away, and sample digits with the shipped UNet, watching $x_t$ and
# $\hat x_0$ along the way. Every formula is derived with sympy and checked against the function
# the sampler runs.

# %%
import matplotlib.pyplot as plt
import sympy as sp
import torch

import diffedu as d
from diffedu import assets
from diffedu import symbolic as S
from diffedu.data import digits

torch.set_num_threads(2)
s = S.symbols()

# %% [markdown]
# ## 1. The forward chain and merging Gaussians
#
# One step: $x_t = \sqrt{\alpha_t}\,x_{t-1} + \sqrt{1-\alpha_t}\,\epsilon_t$ with $\alpha_t = 1-\beta_t$
# [DDPM eq. 2]. Two independent Gaussian terms add their variances, so by induction the whole chain
# collapses into one step from $x_0$ [DDPM eq. 4]:

# %%
merge = S.merge_gaussians()
merge.show()
assert merge.verify() == []
mean_coef, variance = d.q_mean_var_coefs(s.alpha_bar_t)
assert S.is_zero(mean_coef - merge.result["mean_coef"]) and S.is_zero(variance - merge.result["variance"])
print("diffedu.q_mean_var_coefs is the derived sqrt(alpha_bar_t), 1 - alpha_bar_t")

# %% [markdown]
# A simulation says the same: run the chain 300 steps on 200,000 copies of one value $x_0 = 0.7$
# and compare the mean and variance of $x_{300}$ with the closed form.

# %%
sched = d.Schedule(d.linear_betas(1000))
g = torch.Generator().manual_seed(0)
x = torch.full((200_000,), 0.7, dtype=torch.float64)
for t in range(1, 301):
    x = sched.alpha[t].sqrt() * x + (1 - sched.alpha[t]).sqrt() * torch.randn(x.shape, generator=g, dtype=x.dtype)
mean, var = d.q_mean_var(sched, torch.tensor([0.7], dtype=torch.float64), 300)
print(f"simulated mean {x.mean():.4f}, closed form {mean.item():.4f}")
print(f"simulated var  {x.var():.4f}, closed form {var.item():.4f}")
assert abs(x.mean() - mean.item()) < 0.01 and abs(x.var() - var.item()) < 0.01

# %% [markdown]
# ## 2. Schedules: how fast the signal goes
#
# The course homework (seed 003) compares three schedules. $\bar\alpha_t$ is the share of signal
# variance left; the signal-to-noise ratio is $\bar\alpha_t/(1-\bar\alpha_t)$.

# %%
T = 1000
schedules = {"linear": d.linear_betas(T), "cosine": d.cosine_betas(T), "sigmoid": d.sigmoid_betas(T)}
scheds = {name: d.Schedule(b) for name, b in schedules.items()}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, sc in scheds.items():
    axes[0].plot(range(T + 1), sc.alpha_bar, label=name)
    axes[1].semilogy(range(1, T + 1), sc.snr[1:], label=name)
axes[0].set(title="alpha_bar_t: signal left", xlabel="t", ylabel="alpha_bar_t")
axes[1].set(title="signal-to-noise ratio", xlabel="t", ylabel="SNR_t (log)")
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# What that means for an image: the same digit and the same noise, at the same times, under each
# schedule. The linear schedule has destroyed the digit by $t \approx 400$; cosine keeps it longer.

# %%
x0 = digits(size=16)[0][:1].double()
eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
times = [0, 50, 100, 200, 300, 400, 600, 800, 1000]
fig, axes = plt.subplots(3, len(times), figsize=(10, 3.6))
for i, (name, sc) in enumerate(scheds.items()):
    for j, t in enumerate(times):
        axes[i, j].imshow(d.q_sample(sc, x0, t, eps)[0, 0], cmap="gray", vmin=-2, vmax=2)
        axes[i, j].set_xticks([])
        axes[i, j].set_yticks([])
        if i == 0:
            axes[i, j].set_title(f"t={t}", fontsize=8)
    axes[i, 0].set_ylabel(name, fontsize=8)
fig.suptitle("q(x_t | x_0) under three schedules (grey scale [-2, 2], so x_0 itself looks grey)")
plt.show()

# %% [markdown]
# ## 3. The posterior by Bayes and completing the square
#
# $q(x_{t-1}\mid x_t, x_0) \propto q(x_t \mid x_{t-1})\,q(x_{t-1}\mid x_0)$. The log of the product
# is a quadratic in $x_{t-1}$: collect its $x_{t-1}^2$ and $x_{t-1}$ terms, read off the precision
# and the mean [DDPM eq. 6-7], then replace $x_0$ by its expression in $\epsilon$ [DDPM eq. 11]:

# %%
post = S.ddpm_posterior()
post.show()
assert post.verify() == []
for pair in S.PAIRS:
    if pair.numeric in (d.posterior_mean_coefs, d.posterior_variance, d.posterior_mean_eps_coefs):
        assert S.verify(pair) == [], pair.name
print("posterior_mean_coefs, posterior_variance, posterior_mean_eps_coefs: derived == code")

# %% [markdown]
# $\tilde\beta_t$ lies between 0 and $\beta_t$ (DDPM's two choices of $\sigma_t^2$ are these two
# ends); here for the linear schedule:

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
sc = scheds["linear"]
ax.semilogy(range(1, T + 1), sc.beta[1:], label="beta_t")
ax.semilogy(range(2, T + 1), sc.posterior_variance[2:], label="beta_tilde_t")
ax.set(title="The two reverse variances of DDPM", xlabel="t", ylabel="variance (log)")
ax.legend()
plt.show()
assert bool((sc.posterior_variance[1:] <= sc.beta[1:]).all())

# %% [markdown]
# ## 4. The ELBO and what L_simple drops
#
# Each term $L_{t-1}$ of the bound is a KL between two Gaussians with the same variance. In the
# $\epsilon$-form it is a weighted $\|\epsilon - \epsilon_\theta\|^2$ [DDPM eq. 12]:

# %%
vlb = S.vlb_term()
vlb.show()
assert vlb.verify() == []

# %% [markdown]
# $L_{simple}$ [DDPM eq. 14] sets every weight to 1. The true weights are far from constant: they
# are huge at small $t$ and tiny at large $t$, so $L_{simple}$ spends relatively more effort on the
# noisy steps, which the DDPM paper found gives better samples.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for variance in ("beta", "beta_tilde"):
    w = d.vlb_weights(sc, variance)
    ax.loglog(range(2, T + 1), w[2:], label=f"ELBO weight, sigma_t^2 = {variance}")
ax.axhline(1.0, color="black", ls="--", label="L_simple: 1")
ax.set(title="Weight of ||eps - eps_theta||^2 at each t", xlabel="t", ylabel="weight")
ax.legend(loc="lower left")
plt.show()

# %% [markdown]
# ## 5. Sampling with the shipped UNet
#
# `assets/` holds a small UNet trained on the handwritten digits that ship with scikit-learn
# (eps-prediction, linear schedule, $T = 1000$; see `assets/README.md` for the command). DDPM
# ancestral sampling takes all 1000 steps.

# %%
unet = assets.load_digits_unet()
eps_model = unet.eps_model(unet.sched)
x_T = torch.randn(16, *unet.shape, generator=torch.Generator().manual_seed(2))
with torch.no_grad():
    traj = d.sample_ddpm(eps_model, unet.sched, x_T, variance="beta_tilde", generator=torch.Generator().manual_seed(3))
print(traj)
fig, axes = plt.subplots(2, 8, figsize=(8, 2.3))
for ax, img in zip(axes.ravel(), traj.x.clamp(-1, 1)):
    ax.imshow(img[0], cmap="gray", vmin=-1, vmax=1)
    ax.axis("off")
plt.suptitle("DDPM, 1000 steps, shipped digits UNet")
plt.show()

# %% [markdown]
# **Progressive generation of 5 samples** (the homework's figure): the state $x_t$ and the model's
# estimate $\hat x_0$ along the way. $\hat x_0$ settles on a digit long before $x_t$ looks like one.

# %%
show_t = [1000, 800, 600, 400, 300, 200, 100, 50, 0]
rows = []
for t in show_t:
    i = int((traj.ts == t).nonzero())
    rows.append((t, traj.xs[i], traj.x0_hats[min(i, len(traj.x0_hats) - 1)]))
fig, axes = plt.subplots(10, len(show_t), figsize=(9, 10))
for j, (t, xt, x0h) in enumerate(rows):
    for k in range(5):
        axes[2 * k, j].imshow(xt[k, 0], cmap="gray", vmin=-1.5, vmax=1.5)
        axes[2 * k + 1, j].imshow(x0h[k, 0].clamp(-1, 1), cmap="gray", vmin=-1, vmax=1)
    axes[0, j].set_title(f"t={t}", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
for k in range(5):
    axes[2 * k, 0].set_ylabel(f"x_t #{k}", fontsize=7)
    axes[2 * k + 1, 0].set_ylabel(f"x0_hat #{k}", fontsize=7)
plt.suptitle("Progressive generation: x_t (odd rows, grey scale [-1.5, 1.5] so the noise fits) "
             "and x0_hat (even rows, [-1, 1])", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Exercises
#
# Use the symbols of `S.symbols()`; `S.check` tells you whether you are right and, if not, where
# your expression differs.
#
# 1. The variance of $q(x_t \mid x_0)$.
# 2. The posterior variance $\tilde\beta_t$ (use `beta_t`, `alpha_t`, `alpha_bar_t`, `alpha_bar_prev`).
# 3. The coefficient of $x_0$ in $\tilde\mu_t$.

# %%
print(S.check("q_variance", sp.Integer(0)))  # exercise 1: replace 0

# %%
print(S.check("posterior_variance", s.beta_t))  # exercise 2: beta_t is DDPM's other choice, not beta_tilde

# %%
print(S.check("posterior_mean_coef_x0", sp.Integer(0)))  # exercise 3: replace 0
