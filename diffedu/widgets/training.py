"""The training explorer: a slider over the snapshots of a training run; the loss curve and what each snapshot samples.

Training [DDPM Alg. 1] repeats one gradient step on L_simple; this explorer shows what the steps
bought.  Left, the loss curve of the whole run (every step's loss, light, and its running mean, on a
log axis) with a marker at the chosen step; right, n images that the snapshot of that step samples
with deterministic DDIM (eta = 0) [DDIM eq. 12] from the SAME starting noise x_T (the seed's), so
sliding the step shows the same digits emerge from noise as training proceeds.  The samples of a
(step, seed) are computed once and kept, so going back is instant.

    model = UNet(...); opt = torch.optim.AdamW(model.parameters(), 2e-3)
    snapshots, losses = {0: copy.deepcopy(model.state_dict())}, []
    for step in range(1, 301):                      # [DDPM Alg. 1]
        loss = l_simple(model, sched, x_data[torch.randint(len(x_data), (64,))])
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())                  # losses[step - 1]: the loss of training step `step`
        if step % 50 == 0:
            snapshots[step] = copy.deepcopy(model.state_dict())
    ex = TrainingExplorer(snapshots, losses, sched, model=model, shape=(1, 8, 8))
    ex.set(step=50)                                 # a matplotlib Figure, anywhere
    ex.widget()                                     # in a notebook: step slider and seed

Imports: copy, math, torch, matplotlib, ipywidgets (inside `widget`), diffedu.samplers (ddim), diffedu.schedules,
_checks, and .compute, .image, .ui beside it.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
from matplotlib.figure import Figure
from torch import nn

from .._checks import check_int
from ..samplers.ddim import sample_ddim
from ..schedules import Schedule
from .compute import torch_threads
from .image import mosaic
from .ui import PanelExplorer, panel

SETTINGS = ("step", "seed")


class TrainingExplorer(PanelExplorer):
    """The loss curve and n samples of one training snapshot, same x_T for every snapshot; `set(step=, seed=)`.

    snapshots     {training step: state_dict}: step s >= 0 holds the weights after s updates (0: the
                  initial weights); each is copied (to the CPU) when the explorer is made
    losses        the per-step losses of the run, 1-D: losses[s - 1] is the loss of training step s
                  (the numbering of `diffedu.training.train`'s log); every snapshot step <= len(losses)
    sched         the schedule the network was trained on (DDIM samples on it)
    model         an nn.Module of the trained architecture whose `load_state_dict` takes the snapshots;
                  the explorer samples with a deep copy of it (on the CPU, in eval mode), never with it
    shape         (C, H, W) of one image; n images are sampled per snapshot from x_T of the seed
    sample_steps  DDIM steps (eta = 0, the package's default "leading" grid)
    smooth        the running mean's window, in steps (centred on each step)
    step          the starting step (default: the last snapshot)
    """

    def __init__(self, snapshots, losses, sched: Schedule, *, model: nn.Module, shape, n: int = 16,
                 sample_steps: int = 20, smooth: int = 20, seed: int = 0, step: int | None = None,
                 threads: int | None = 1, figsize=(9.0, 3.4), dpi: int = 80):
        if not isinstance(sched, Schedule):
            raise ValueError(f"sched must be a diffedu.schedules.Schedule, got {type(sched).__name__}")
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be an nn.Module (the architecture the snapshots load into), got "
                             f"{type(model).__name__}")
        self.sched = sched
        self.losses = _check_losses(losses)
        self.net = copy.deepcopy(model).cpu().eval()
        self.snapshots = _check_snapshots(snapshots, len(self.losses), self.net)
        if not (isinstance(shape, (tuple, list, torch.Size)) and len(shape) == 3):
            raise ValueError(f"shape must be (C, H, W) of one image, got {shape!r}")
        self.shape = tuple(check_int(s, "shape entry", lo=1) for s in shape)
        self.n = check_int(n, "n", lo=1, hi=256)
        self.sample_steps = check_int(sample_steps, "sample_steps", lo=1, hi=sched.T)
        self.smooth = check_int(smooth, "smooth", lo=1)
        self.steps = sorted(self.snapshots)              # the slider's stops
        self.threads, self.figsize, self.dpi = threads, tuple(figsize), dpi
        self.settings: dict = {}
        self.settings = self.validate(step=self.steps[-1] if step is None else step, seed=seed)
        self.cache: dict[tuple[int, int], torch.Tensor] = {}   # (step, seed) -> samples (n, C, H, W)
        self.fig: Figure | None = None
        self.samples: torch.Tensor | None = None         # the last samples
        self.cached = False                              # whether the last set() found them in the cache
        self.seconds = 0.0
        self.ui = self.controls = None                   # set by widget(): the VBox, and its controls by setting name

    def validate(self, **changes) -> dict:
        """The settings `set(**changes)` would make, checked (ValueError names a bad one); changes nothing."""
        s = {**self.settings, **changes}
        unknown = set(s) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; the training explorer has step, seed")
        step = check_int(s["step"], "step", lo=0)
        if step not in self.snapshots:
            raise ValueError(f"step must be one of the snapshot steps {', '.join(map(str, self.steps))}; got {step}")
        return dict(step=step, seed=check_int(s["seed"], "seed", lo=0, hi=2**40))

    def start(self, seed: int) -> torch.Tensor:
        """x_T ~ N(0, I) of a seed, (n, C, H, W): the noise every snapshot starts from."""
        return torch.randn((self.n, *self.shape), generator=torch.Generator().manual_seed(seed))

    def window(self, step: int) -> tuple[int, int]:
        """The steps a..b whose losses the running mean at `step` averages: `smooth` steps centred on it
        (fewer at the ends of the run), so the smooth curve does not lag the falling loss."""
        return max(1, step - self.smooth // 2), min(len(self.losses), step + (self.smooth - 1) // 2)

    def loss_at(self, step: int) -> tuple[float, float] | None:
        """(the loss of training step `step`, the running mean there); None at step 0 (no update yet)."""
        if step == 0:
            return None
        return float(self.losses[step - 1]), float(self.running_mean()[step - 1])

    def running_mean(self) -> torch.Tensor:
        """The mean of the losses of steps `window(s)`, for s = 1..len(losses)."""
        c = torch.cat([torch.zeros(1, dtype=torch.float64), self.losses.cumsum(0)])
        s = torch.arange(1, len(self.losses) + 1)
        lo = (s - self.smooth // 2).clamp(min=1) - 1
        hi = (s + (self.smooth - 1) // 2).clamp(max=len(self.losses))
        return (c[hi] - c[lo]) / (hi - lo)

    def compute(self, s: dict) -> None:
        """Sample the snapshot from the seed's x_T, or take it from the cache (`set` calls it)."""
        key = (s["step"], s["seed"])
        self.cached = key in self.cache
        if not self.cached:
            self.net.load_state_dict(self.snapshots[key[0]])
            with torch.no_grad(), torch_threads(self.threads):
                traj = sample_ddim(self.net, self.sched, self.start(key[1]), self.sample_steps, eta=0.0, record=False)
            self.cache[key] = traj.x.detach().cpu()
        self.samples = self.cache[key]

    def title(self) -> str:
        """The figure's title: the step, its loss and running mean, and how the samples were drawn."""
        s, last = self.settings, len(self.losses)
        at = self.loss_at(s["step"])
        a, b = self.window(s["step"])
        where = (f"step {s['step']} of {last}: loss {at[0]:.4g} (mean over steps {a}..{b}: {at[1]:.4g})"
                 if at else f"step 0 of {last}: the initial weights, before any update")
        return (f"{where}\n{self.n} samples, DDIM {self.sample_steps} steps (eta = 0), the same x_T for every step "
                f"(seed {s['seed']})")

    def _draw(self) -> None:
        s = self.settings
        self.fig = self.fig or Figure(figsize=self.figsize, dpi=self.dpi)
        self.fig.clear()
        ax = self.fig.add_axes([0.08, 0.16, 0.5, 0.66])
        steps = torch.arange(1, len(self.losses) + 1)
        ax.plot(steps, self.losses, color="tab:blue", alpha=0.3, lw=0.8, label="loss of each step")
        mean = self.running_mean()
        ax.plot(steps, mean, color="tab:blue", lw=1.6, label=f"running mean ({self.smooth} steps, centred)")
        if bool((self.losses > 0).all()):
            ax.set_yscale("log")
        ax.axvline(s["step"], color="tab:red", lw=1)
        at = self.loss_at(s["step"])
        if at is not None:
            ax.plot([s["step"]], [at[1]], "o", color="tab:red", ms=5)
        pad = max(1.0, 0.04 * len(self.losses))          # the marker stays visible at step 0 and at the last step
        ax.set(xlabel="training step", ylabel="L_simple", xlim=(-pad, len(self.losses) + pad))
        ax.legend(loc="upper right", fontsize=7)
        ax.tick_params(labelsize=8)
        ax_grid = self.fig.add_axes([0.62, 0.04, 0.36, 0.78])
        cols = math.ceil(math.sqrt(self.n))
        rows = -(-self.n // cols)
        x = self.samples.float()
        tiles = torch.cat([x, x.new_full((rows * cols - self.n, *x.shape[1:]), 1.0)])
        img = mosaic(tiles.reshape(rows, cols, *x.shape[1:])).numpy()
        ax_grid.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=-1, vmax=1, interpolation="nearest")
        ax_grid.set_axis_off()
        self.fig.suptitle(self.title(), fontsize=9)

    def widget(self):
        """ipywidgets controls (a step slider over the snapshots, seed) over the figure, shown as a PNG."""
        import ipywidgets as W

        s = self.settings
        return panel(self, {
            "step": W.SelectionSlider(options=self.steps, value=s["step"], continuous_update=False, description="step"),
            "seed": W.BoundedIntText(value=s["seed"], min=0, max=2**31 - 1, description="seed",
                                     layout=W.Layout(width="160px")),
        })


def _check_losses(losses) -> torch.Tensor:
    """The losses as a 1-D float64 tensor, non-empty and finite (ValueError names the first bad step)."""
    try:
        t = torch.as_tensor(losses.detach().cpu() if torch.is_tensor(losses) else losses, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"losses must be a 1-D sequence of numbers, got {type(losses).__name__}") from None
    if t.dim() != 1 or len(t) == 0:
        raise ValueError(f"losses must be a non-empty 1-D sequence (one loss per training step), got shape {tuple(t.shape)}")
    bad = (~torch.isfinite(t)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"losses must be finite: the loss of training step {i + 1} (losses[{i}]) is {float(t[i])} "
                         f"({len(bad)} non-finite in all); the run diverged there")
    return t


def _check_snapshots(snapshots, n_steps: int, net: nn.Module) -> dict[int, dict]:
    """{step: a CPU copy of its state_dict}; steps are ints in 0..n_steps, each loads into `net` (strict)."""
    if not isinstance(snapshots, Mapping) or not snapshots:
        raise ValueError("snapshots must be a non-empty dict {training step: state_dict}, got "
                         f"{'an empty dict' if isinstance(snapshots, Mapping) else type(snapshots).__name__}")
    owner: dict[int, int] = {}               # tensor storage -> the step that holds it: aliasing is a missed copy
    out = {}
    for step, state in snapshots.items():
        step = check_int(step, "snapshot step", lo=0)
        if step > n_steps:
            raise ValueError(f"snapshot step {step} is past the last recorded loss (losses has {n_steps} steps): "
                             "a snapshot's step must be in 0..len(losses)")
        if isinstance(state, nn.Module):
            raise ValueError(f"snapshot {step} is an nn.Module; pass its weights: copy.deepcopy(model.state_dict())")
        if not isinstance(state, Mapping):
            raise ValueError(f"snapshot {step} must be a state_dict, got {type(state).__name__}")
        for v in state.values():
            if torch.is_tensor(v) and v.numel():
                other = owner.setdefault(v.untyped_storage().data_ptr(), step)
                if other != step:
                    raise ValueError(f"snapshots {other} and {step} share their tensors (the live weights, not copies): "
                                     "store copy.deepcopy(model.state_dict()) at each snapshot")
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(f"snapshot {step} does not load into model: {str(err).splitlines()[0]}") from None
        out[step] = {k: v.detach().to("cpu", copy=True) if torch.is_tensor(v) else copy.deepcopy(v)
                     for k, v in state.items()}
    return out
