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
# # 05 · Train a UNet, evaluate every sampler, train on your own images
#
# **The question.** What does it take to train a diffusion model, and how do the course's
# samplers compare on a model we trained ourselves?
#
# **By the end you can** train the small UNet (the shipped one took 28 minutes on one CPU core; here a short demo
# run), resume an interrupted run, sample grids with every sampler, measure quality (the
# course's digit-feature Fréchet distance and the recognisable-digit rate) against the number of
# network calls, and point the same code at a folder of your own images.
#
# By default this notebook uses the UNet shipped in `assets/` and trains only a short demo run.
# Set `RETRAIN = True` to train the full model (uses a GPU when there is one).

# %%
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

import diffedu as d
from diffedu import assets
from diffedu.data import ImageFolder, digits
from diffedu.plotting import show_images
from diffedu.sampling import generate
from diffedu.training import TrainConfig, pick_device, train

RETRAIN = False
torch.set_num_threads(2)
print("device:", pick_device())

# %% [markdown]
# ## 1. Data and model
#
# The handwritten digits that ship with scikit-learn: 1797 images of 8x8 pixels with 17 grey
# levels, scaled to $[-1, 1]$. Nothing is downloaded.

# %%
x_data, labels = digits(size=8)
print(x_data.shape, x_data.min().item(), x_data.max().item())
fig, axes = plt.subplots(1, 10, figsize=(8, 1))
for k, ax in enumerate(axes):
    ax.imshow(x_data[(labels == k).nonzero()[0, 0], 0], cmap="gray", vmin=-1, vmax=1)
    ax.axis("off")
plt.suptitle("one digit of each class")
plt.show()

# %% [markdown]
# `diffedu.UNet` is one readable file: residual blocks with group norm, a sinusoidal time
# embedding, self-attention at the lowest resolution. The shipped model's configuration:

# %%
unet = assets.load_digits_unet()
print(unet.model.config)
print(f"{sum(p.numel() for p in unet.model.parameters()) / 1e6:.2f}M parameters")

# %% [markdown]
# ## 2. Training, interrupted and resumed
#
# `diffedu.training.train` runs AdamW with an EMA of the weights, gradient clipping and (on CUDA)
# mixed precision; it writes `ckpt.pt` atomically every `ckpt_every` steps. A short demo run of a
# tiny UNet: 60 steps, stopped at 40 and resumed, ends with exactly the weights of an
# uninterrupted 60-step run.

# %%
# NBVAL_IGNORE_OUTPUT
work = Path(tempfile.mkdtemp(prefix="diffedu_nb05_"))
small = dict(in_channels=1, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention=False)
kw = dict(batch_size=64, ckpt_every=20, progress=True, seed=0)


def fresh_unet():
    torch.manual_seed(0)  # the initial weights are the caller's: same seed, same start
    return d.UNet(**small)


train(fresh_unet(), x_data, work / "straight", TrainConfig(steps=60, **kw))
train(fresh_unet(), x_data, work / "resumed", TrainConfig(steps=40, **kw))  # "interrupted" after 40 steps
train(fresh_unet(), x_data, work / "resumed", TrainConfig(steps=60, **kw), resume=True)

# %%
a = torch.load(work / "straight" / "ckpt.pt", weights_only=True)["ema"]
b = torch.load(work / "resumed" / "ckpt.pt", weights_only=True)["ema"]
assert all(torch.equal(a[k], b[k]) for k in a)
print("resumed run == uninterrupted run, bit for bit")

# %% [markdown]
# With `RETRAIN = True` the next cell trains the full model with the command recorded in
# `assets/README.md` (on a GPU when present); otherwise the shipped weights are used.

# %%
# NBVAL_IGNORE_OUTPUT
if RETRAIN:
    t0 = time.perf_counter()
    config = dict(unet.model.config)
    unet = train(d.UNet(**{k: v for k, v in config.items() if k != "kind"}), x_data, work / "full", steps=6000)
    print(f"trained in {time.perf_counter() - t0:.0f} s")

# %% [markdown]
# ## 3. Every sampler, one grid each

# %%
# eta only for DDIM: the registry refuses it for samplers that have none (DDPM is the eta = 1 member)
samplers = [("ddpm", 1000, None), ("ddim", 50, 0.0), ("ddim", 50, 1.0), ("edm-euler", 50, None), ("edm-heun", 25, None)]
fig, axes = plt.subplots(1, len(samplers), figsize=(12, 2.8))
for ax, (name, steps, eta) in zip(axes, samplers):
    traj = generate(unet, 36, name, steps=steps, eta=eta, generator=torch.Generator().manual_seed(0))
    show_images(ax, traj.x, ncol=6)
    ax.set_title(f"{name}" + ("" if eta is None else f" eta={eta:g}") + f"\nsteps={steps}, NFE={traj.nfe}", fontsize=9)
plt.suptitle("36 samples per sampler, same seed, shipped digits UNet")
plt.show()

# %% [markdown]
# Look along the rows: DDIM with $\eta = 0$, EDM Euler and EDM Heun turn the same starting noise
# into the *same* digits, because all three solve the same probability-flow ODE (notebook 04);
# only their step errors differ. DDPM and DDIM with $\eta = 1$ add fresh noise on the way, and
# end somewhere else.

# %% [markdown]
# ## 4. Quality against network calls
#
# `diffedu.metrics.evaluate_sampler` samples with one sampler at several step counts (same seed)
# and returns the course's quality numbers and the wall time per row: the digits FID (Fréchet
# distance between features of the samples and of the 1797 real digits in the shipped classifier;
# **not** Inception FID, comparable only within this course) and the recognisable-digit rate
# (classifier probability > 0.9). `benchmarks/fid_table.py` runs it for every sampler of the course
# with 1000 samples per row; here we re-run three of its cheaper rows and check that they
# reproduce the stored table.

# %%
# NBVAL_IGNORE_OUTPUT
from diffedu.metrics import evaluate_sampler  # noqa: E402

classifier = assets.load_classifier()
live = evaluate_sampler(unet, "ddim", steps=(10, 20), eta=0.0, n=1000, seed=0, classifier=classifier)
live += evaluate_sampler(unet, "edm-heun", steps=(6,), n=1000, seed=0, classifier=classifier)
for r in live:
    print(f"{r['sampler']:9s} steps {r['steps']:3d}  NFE {r['nfe']:3d}  FID {r['fid']:.3f}  "
          f"recognisable {r['recognisable']:.3f}  {r['seconds']:.1f} s")

# %%
table = Path("../benchmarks/results/fid_table.md").read_text()
stored = {}
for line in table.splitlines():
    cells = [c.strip() for c in line.strip("|").split("|")]
    if cells[0] in ("ddpm", "ddim", "edm-euler", "edm-heun"):
        stored[(cells[0], float(cells[1]), int(cells[2]))] = (float(cells[4]), float(cells[5]))
for r in live:
    eta = 0.0 if r["eta"] is None else r["eta"]   # the table's eta column says 0 for Heun, which has no eta
    fid, rec = stored[(r["sampler"], eta, r["steps"])]
    assert abs(r["fid"] - fid) < 0.05 * fid + 0.02 and abs(r["recognisable"] - rec) < 0.02, (r, fid, rec)
print("the live rows reproduce benchmarks/results/fid_table.md")
print(table[table.index("| sampler"):])

# %% [markdown]
# ## 5. Your own images
#
# `ImageFolder(path, size, channels)` reads every PNG/JPEG below a folder (recursively), resizes
# and centre-crops to `size`, and scales to $[-1, 1]$; a missing or empty folder, or an unreadable
# file, gets an error that names it. Here the notebook writes a small folder itself (coloured
# discs) and trains a few steps on it; for the anime faces of the course homework, point `path` at
# the unpacked folder and train for longer (`python -m diffedu train --data PATH --size 32 ...`).

# %%
folder = work / "my_images"
rng = np.random.default_rng(0)
for i in range(24):
    img = np.zeros((40, 48, 3), np.uint8)
    yy, xx = np.mgrid[:40, :48]
    cy, cx, r = rng.integers(12, 28), rng.integers(12, 36), rng.integers(6, 11)
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r**2] = rng.integers(60, 255, 3)
    (folder / f"set{i % 2}").mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(folder / f"set{i % 2}" / f"disc_{i:02d}.png")
data = ImageFolder(folder, size=16, channels=3).tensor()
print(data.shape, f"in [{data.min():.0f}, {data.max():.0f}]")
fig, ax = plt.subplots(figsize=(6, 2))
show_images(ax, data, ncol=12, title="the folder, as the model sees it: 16x16, centre-cropped, in [-1, 1]")
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
mine = train(d.UNet(in_channels=3, base_channels=16, channel_mults=(1, 2), num_res_blocks=1, attention=False),
             data, work / "mine", steps=30, batch_size=24, progress=False)
x = generate(mine, 8, "ddim", steps=20).x
print("sampled", tuple(x.shape), "from a model trained on", len(data), "images (30 steps: noise, as expected)")

# %% [markdown]
# ## Exercises
#
# 1. How many network calls does `edm-heun` with 26 steps make? Check with `d.sampling.nfe_of`.
# 2. Train the demo UNet 200 steps instead of 60 and compare its recognisable-digit rate with the
#    shipped model's.

# %%
my_nfe = 0  # exercise 1: replace 0
print("exercise 1:", "right" if my_nfe == d.sampling.nfe_of("edm-heun", 26) else "not yet")
