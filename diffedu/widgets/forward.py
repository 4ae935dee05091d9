"""The forward-process explorer: pick a schedule and a time t; see x_t, the network's x0_hat and where t sits on alpha_bar and SNR.

q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) [DDPM eq. 4]: moving t shows how much of the
digit x_t keeps (sqrt(alpha_bar_t)), and the schedule menu shows that linear, cosine and sigmoid
schedules spend the same T steps very differently.  With a trained eps-network the explorer also shows
its estimate x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t) [DDPM eq. 15].  The
network knows only the noise level: for another schedule than the one it was trained on it is asked
at the training time t' whose alpha_bar is nearest, which is exactly how a network serves any
schedule (the title says which t' was used).

    ex = ForwardExplorer.from_assets()           # MNIST test digits and the shipped MNIST UNet (null class)
    ex.set(t=500, schedule="cosine")             # a matplotlib Figure, anywhere
    ex.widget()                                  # in a notebook: schedule, t and seed controls

Imports: torch, matplotlib, diffedu.schedules, diffedu.forward, diffedu.param, diffedu.data and diffedu.assets (io),
diffedu.sampling, _checks, and .compute, .image, .ui beside it.
"""
from __future__ import annotations


import torch
from matplotlib.figure import Figure

from .. import assets
from .._checks import check_choice, check_int
from ..data import mnist
from ..forward import q_sample
from ..param import x0_from_eps
from ..sampling import guided
from ..schedules import Schedule, cosine_betas, linear_betas, sigmoid_betas
from .compute import torch_threads
from .image import mosaic
from .ui import PanelExplorer, panel

SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas, "sigmoid": sigmoid_betas}


class ForwardExplorer(PanelExplorer):
    """x_0, x_t and x0_hat of a few images at one time t of one schedule; `set(schedule=, t=, seed=)`.

    images   (n, C, H, W) in [-1, 1]: the x_0 shown (n at most 16)
    trained  optional: a `Trained` eps-network whose estimate x0_hat is shown (a class-conditional one
             is asked as its null class, the unconditional model)
    T        steps of every schedule in the menu (the network's own T when one is given)
    t        the starting time (default 3T/10)
    """

    def __init__(self, images: torch.Tensor, trained=None, *, schedule: str = "linear", t: int | None = None, seed: int = 0,
                 T: int | None = None, threads: int | None = 1, figsize=(9.0, 3.4), dpi: int = 80):
        if not (torch.is_tensor(images) and images.dim() == 4 and 1 <= len(images) <= 16):
            raise ValueError("images must be a tensor (n, C, H, W) with 1 <= n <= 16, got "
                             f"{tuple(images.shape) if torch.is_tensor(images) else type(images).__name__}")
        self.x0 = images.detach().float().cpu()
        self.trained = trained
        net_T = trained.schedule().T if trained is not None else None
        self.T = check_int(T if T is not None else (net_T or 1000), "T", lo=1)
        if net_T is not None and self.T != net_T:
            raise ValueError(f"T={self.T}, but the network was trained with T = {net_T}: leave T out")
        self.scheds = {name: Schedule(betas(self.T)) for name, betas in SCHEDULES.items()}
        if trained is not None:
            null = guided(trained, len(self.x0), labels=None)
            self.eps_model, self.net_sched = null.eps_model(null.sched), trained.schedule()
        self.threads, self.figsize, self.dpi = threads, tuple(figsize), dpi
        self.settings: dict = {}
        self.settings = self.validate(schedule=schedule, t=(3 * self.T) // 10 if t is None else t, seed=seed)
        self.fig: Figure | None = None
        self.x_t = self.x0_hat = None
        self.t_net: int | None = None                  # the network time asked (nearest alpha_bar)
        self.seconds = 0.0
        self.ui = self.controls = None

    @classmethod
    def from_assets(cls, n: int = 6, **kwargs) -> ForwardExplorer:
        """The first test digit of each class 0..n-1 of `diffedu.data.mnist`, and the shipped MNIST UNet."""
        x, y = mnist("test")
        first = [int((y == c).nonzero()[0]) for c in range(n)]
        return cls(x[first], assets.load_mnist_unet(), **kwargs)

    def validate(self, **changes) -> dict:
        """The settings `set(**changes)` would make, checked (ValueError names a bad one); changes nothing."""
        s = {**self.settings, **changes}
        unknown = set(s) - {"schedule", "t", "seed"}
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; the forward explorer has schedule, t, seed")
        return dict(schedule=check_choice(s["schedule"], "schedule", tuple(SCHEDULES)),
                    t=check_int(s["t"], "t", lo=0, hi=self.T), seed=check_int(s["seed"], "seed", lo=0, hi=2**40))

    def alpha_bar(self) -> float:
        """alpha_bar_t of the current schedule and t."""
        return float(self.scheds[self.settings["schedule"]].alpha_bar[self.settings["t"]])

    def compute(self, s: dict) -> None:
        """Draw x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (eps: the seed's) and estimate x0_hat (`set` calls it)."""
        sched = self.scheds[s["schedule"]]
        eps = torch.randn(self.x0.shape, generator=torch.Generator().manual_seed(s["seed"]))
        self.x_t = q_sample(sched, self.x0, s["t"], eps)
        self.x0_hat, self.t_net = None, None
        if self.trained is not None and s["t"] > 0:
            ab = self.alpha_bar()
            self.t_net = int((self.net_sched.alpha_bar[1:] - ab).abs().argmin()) + 1
            ab_net = self.net_sched.alpha_bar[self.t_net].float()
            with torch.no_grad(), torch_threads(self.threads):
                eps_hat = self.eps_model(self.x_t, torch.full((len(self.x_t),), self.t_net, dtype=torch.long)).float()
            self.x0_hat = x0_from_eps(self.x_t, eps_hat, ab_net)     # [DDPM eq. 15]

    def _draw(self) -> None:
        s, sched = self.settings, self.scheds[self.settings["schedule"]]
        self.fig = self.fig or Figure(figsize=self.figsize, dpi=self.dpi)
        self.fig.clear()
        rows = [("x_0", self.x0), ("x_t", self.x_t)] + ([("x0_hat", self.x0_hat)] if self.x0_hat is not None else [])
        ax = self.fig.add_axes([0.08, 0.08, 0.5, 0.78])
        ax.imshow(mosaic(torch.stack([r for _, r in rows])).numpy(), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        h = self.x0.shape[-2] + 1
        ax.set(xticks=[], yticks=[h * i + h // 2 for i in range(len(rows))], yticklabels=[name for name, _ in rows])
        ab = self.alpha_bar()
        ts = torch.arange(self.T + 1)
        ax_ab = self.fig.add_axes([0.66, 0.16, 0.31, 0.7])
        for name, other in self.scheds.items():
            ax_ab.plot(ts, other.alpha_bar, color="tab:blue" if name == s["schedule"] else "0.8", lw=1.5 if
                       name == s["schedule"] else 1, label=name if name == s["schedule"] else None)
        ax_ab.axvline(s["t"], color="tab:red", lw=1)
        ax_ab.plot([s["t"]], [ab], "o", color="tab:red")
        ax_ab.set(xlabel="t", ylabel="alpha_bar_t", ylim=(0, 1.02), xlim=(0, self.T))
        ax_ab.legend(loc="upper right", fontsize=8, title="grey: the others", title_fontsize=7)
        snr = float(sched.snr[s["t"]])
        title = (f"{s['schedule']}, t = {s['t']}: alpha_bar_t = {ab:.4f}, x_t keeps sqrt(alpha_bar_t) = {ab ** 0.5:.3f} "
                 f"of x_0, SNR = {snr:.3g}")
        if self.t_net is not None:
            title += f"\nx0_hat: the network asked at its t' = {self.t_net} (nearest alpha_bar on its own schedule)"
        self.fig.suptitle(title, fontsize=9)

    def widget(self):
        """ipywidgets controls (schedule, t, seed) over the figure, shown as a PNG."""
        import ipywidgets as W

        s = self.settings
        return panel(self, {
            "schedule": W.Dropdown(options=list(SCHEDULES), value=s["schedule"], description="schedule"),
            "t": W.IntSlider(value=s["t"], min=0, max=self.T, step=max(1, self.T // 100), continuous_update=False,
                             description="t"),
            "seed": W.BoundedIntText(value=s["seed"], min=0, max=2**31 - 1, description="seed",
                                     layout=W.Layout(width="160px")),
        })
