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
# # 03 · Estimate, then correct: one loop for every reverse process
#
# **The question.** DDPM and DDIM were derived from Gaussian densities. What is left of them if
# the forward process is *any* corruption $x_t = \mathcal F_t(x_0, \epsilon)$: noise, blur, a mask?
#
# **By the end you can** write a reverse step as "estimate $\hat x_0$ from $x_t$, then correct to
# $x_{t-1}$", state the marginal constraint every correction must keep, recover DDPM and DDIM as
# special cases (checked, not claimed), see why ignoring $x_t$ accumulates error, and run the same
# loop on a blur that has no noise at all.
#
# This follows the "unified diffusion model" post (seed 002): $p(x_{t-1}\mid x_t) = \int
# p(x_{t-1}\mid x_t, x_0)\,p(x_0\mid x_t)\,dx_0$. The model learns $p(x_0 \mid x_t)$, the *estimate*;
# $p(x_{t-1} \mid x_t, x_0)$ is ours to design, the *correction*, subject to one constraint
# [UDM eq. 9]:
# $$\int p(x_{t-1}\mid x_t, x_0)\,p(x_t\mid x_0)\,dx_t = p(x_{t-1}\mid x_0).$$

# %%
import inspect

import matplotlib.pyplot as plt
import sympy as sp
import torch

import diffedu as d
from diffedu.symbolic import unified as sym_unified

torch.set_num_threads(2)
mix = d.GaussianMixture.eight_gaussians()
sched = d.Schedule(d.linear_betas(1000))

# %% [markdown]
# ## 1. Three corrections
#
# With $\hat\epsilon = \mathcal F_t^{-1}(\hat x_0, x_t)$ the noise that would explain $x_t$:
#
# | correction | $x_{t-1}$ | uses $x_t$? |
# | --- | --- | --- |
# | `"marginal"` | $\mathcal F_{t-1}(\hat x_0, z)$, fresh $z$ | no |
# | `"deterministic"` | $\mathcal F_{t-1}(\hat x_0, \hat\epsilon)$ | fully |
# | `"partial"` | $\mathcal F_{t-1}(\hat x_0, \sqrt{1-\tilde\sigma^2}\,\hat\epsilon + \tilde\sigma z)$ [UDM eq. 13] | partly |
#
# All three live in one function; here is its step, the whole of it:

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
forward = d.GaussianForward(sched)
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
# ## 4. What each correction does to samples
#
# The exact $\hat x_0$ hides the difference, so give every sampler the same slightly wrong
# estimate: $0.9\,\hat x_0$, a model that shrinks towards the origin. `"marginal"` throws away
# $x_t$ at each step, so the error is re-made every step and never corrected; `"deterministic"`
# keeps the noise that $x_t$ carries, and the progress made so far survives.

# %%
def shrunk(x, t):
    return 0.9 * x0_model(x, t)


grid = torch.linspace(-3, 3, 200, dtype=torch.float64)
gx, gy = torch.meshgrid(grid, grid, indexing="xy")
density = mix.log_prob(torch.stack([gx.ravel(), gy.ravel()], 1)).exp().reshape(200, 200)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), sharey=True)
for ax, (name, kw) in zip(axes, (("marginal", {}), ("partial", {"sigma_tilde": 0.5}), ("deterministic", {}))):
    traj = d.sample_estimate_correct(shrunk, forward, ts, x_T, name, generator=torch.Generator().manual_seed(1), **kw)
    ax.contour(gx, gy, density, levels=6, colors="grey", linewidths=0.5)
    ax.scatter(*traj.x.T, s=1, alpha=0.4)
    label = name + (" (sigma_tilde 0.5)" if kw else "")
    ax.set(title=f"{label}\nper-mode Fréchet {mix.per_mode_frechet(traj.x):.4f}", xlabel="x_1", xlim=(-3, 3), ylim=(-3, 3))
axes[0].set_ylabel("x_2")
plt.suptitle("The same biased estimate, three corrections, 50 steps")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 5. A corruption with no noise: blur
#
# `diffedu.Blur(T, std_max)` blurs with a Gaussian kernel whose width grows with $t$. There is no
# $\epsilon$: $\mathcal F_t(x_0, r) = A_t(x_0) + r$, and "solving for the noise" means taking the
# residual $r = x_t - A_t(\hat x_0)$. The deterministic correction
# $x_{t-1} = x_t - A_t(\hat x_0) + A_{t-1}(\hat x_0)$ is cold diffusion's sampler [Cold]; the
# marginal one, $x_{t-1} = A_{t-1}(\hat x_0)$, is its naive version.
#
# We train a small x0-predictor on 8x8 digits for this blur (a minute on a CPU) and sample with
# the *same* `sample_estimate_correct`.

# %%
# NBVAL_IGNORE_OUTPUT
# Training log: the loss values depend on the CPU's floating-point kernels, so nbval does not compare them.
import time

from diffedu.data import digits

images, labels = digits(8)
train_x, test_x = images[:1500], images[1500:]            # the last 297 digits are never trained on
blur = d.Blur(T=10, std_max=2.0)
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

# %% [markdown]
# Now restore 64 held-out digits from their full blur $x_T = A_T(x_0)$ with the same loop and
# the two corrections, and compare with a single jump $\hat x_0(x_T, T)$.

# %%
x0 = test_x[:64]
x_T = blur.A(x0, blur.T)
ts = list(range(blur.T, -1, -1))                          # 10, 9, ..., 0: every blur level
with torch.no_grad():
    restored = {c: d.sample_estimate_correct(net, blur, ts, x_T, c).x for c in ("marginal", "deterministic")}
    restored["one jump"] = net(x_T, torch.full((64,), blur.T))
mse = {name: ((x - x0) ** 2).mean().item() for name, x in restored.items()}
assert mse["deterministic"] < mse["marginal"] < ((x_T - x0) ** 2).mean().item()

rows = [("blurred x_T", x_T), ("one jump", restored["one jump"]), ("marginal", restored["marginal"]),
        ("deterministic", restored["deterministic"]), ("truth x_0", x0)]
fig, axes = plt.subplots(len(rows), 1, figsize=(10, 7))
for ax, (name, x) in zip(axes, rows):
    strip = torch.cat(list(x[:16, 0].clamp(-1, 1)), dim=1)
    ax.imshow(strip, cmap="gray", vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_ylabel(name, rotation=0, ha="right", va="center")
axes[0].set_title("Restoring held-out digits from a blur with one estimate-then-correct loop (first 16 of 64)")
plt.tight_layout()
plt.show()

# %% [markdown]
# The `"marginal"` correction re-blurs its estimate from scratch at every level, so each step's
# error is new and nothing is corrected: its restorations are the worst of the three loops (see the
# mean squared errors below, computed on the 64 digits; the cell above asserts the order). The
# `"deterministic"` correction carries the residual $x_t - A_t(\hat x_0)$ forward, so an early
# mistake is undone by later, easier steps: that is cold diffusion's whole trick. A single jump has
# a low squared error too, because the squared error rewards the average of all digits that blur to
# the same picture; look at the strip: the jump is softer than the deterministic loop.

# %%
# NBVAL_IGNORE_OUTPUT
for name, value in mse.items():
    print(f"{name:14s} mean squared error {value:.4f}")

# %% [markdown]
# ## Exercises
#
# 1. Write $\sigma$ as a function of $\tilde\sigma$ and $\bar\alpha_{t-1}$ and check it against the
#    derivation.
# 2. Which $\tilde\sigma$ reproduces DDIM with $\eta = 0.5$ at the first step of a 10-step grid?
#    Compute it with `d.sigma_tilde_for_eta` and explain the number with `d.ddim_sigma`.

# %%
my_sigma = sp.Integer(0)  # exercise 1: replace 0 with your expression in st and ab_prev
right = sp.simplify(my_sigma - udm.result["sigma"].subs("alpha_bar_prev", ab_prev)) == 0
print("exercise 1:", "right" if right else "not yet")

# %%
ts10 = d.ddim_timesteps(1000, 10)
my_sigma_tilde = 0.0  # exercise 2: replace 0.0 with the sigma_tilde of DDIM(eta = 0.5) at the first step of ts10
answer = d.sigma_tilde_for_eta(sched, ts10, 0.5)[0]
print("exercise 2:", "right" if abs(my_sigma_tilde - answer) < 1e-6 else "not yet")
