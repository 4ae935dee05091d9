"""The guidance explorer: one class, the guidance weight w, the same noise; the samples and what a classifier reads.

Classifier-free guidance [CFG eq. 6] moves one class-conditional network's prediction along the line
eps_tilde = (1 + w) eps(x, c) - w eps(x).  This explorer samples n images of class c from the same
x_T (the seed's) with a deterministic sampler by default (DDIM, eta = 0), so moving w changes nothing
but w: at w = 0 the conditional model, with w growing the samples look more like "a c" and less
like each other.  With a classifier it reads every sample and shows how many it calls c (the class
accuracy) and the spread of the classes it sees.

    ex = GuidanceExplorer.from_assets()          # the shipped MNIST UNet and classifier
    ex.set(label=3, guidance=2.0)                # a matplotlib Figure, anywhere
    ex.widget()                                  # in a notebook: class, w, steps and seed controls

Imports: torch, matplotlib, PIL, ipywidgets (inside `widget`), diffedu.sampling and diffedu.assets (io),
diffedu.guidance, _checks, and .compute (the thread setting) beside it.
"""
from __future__ import annotations


import torch
from matplotlib.figure import Figure

from .. import assets
from .._checks import check_int
from ..guidance import check_guidance
from ..sampling import generate
from .compute import torch_threads
from .image import mosaic
from .ui import PanelExplorer, panel

W_MAX = 8.0            # the slider's range of w; any finite w >= 0 is accepted from Python
STEP_CHOICES = (5, 10, 20, 50, 100)


class GuidanceExplorer(PanelExplorer):
    """n samples of one class at guidance weight w, same noise for every w; `set(label=, guidance=, steps=, seed=)`.

    trained     a class-conditional `Trained` (`trained.num_classes` set), e.g. `assets.load_mnist_unet()`
    classifier  optional: a network mapping the samples to class logits (its reading is shown)
    sampler     a registry key (default "ddim", deterministic at eta = 0), passed to `generate`
    """

    def __init__(self, trained, classifier=None, n: int = 16, *, sampler: str = "ddim", label: int = 0,
                 guidance: float = 0.0, steps: int = 20, seed: int = 0, threads: int | None = 1,
                 figsize=(7.2, 3.6), dpi: int = 80):
        if trained.num_classes is None:
            raise ValueError("GuidanceExplorer needs a class-conditional model (trained with labels); this one is "
                             "unconditional")
        self.trained, self.classifier, self.sampler = trained, classifier, sampler
        self.n = check_int(n, "n", lo=1, hi=256)
        self.threads, self.figsize, self.dpi = threads, tuple(figsize), dpi
        self.settings: dict = {}
        self.settings = self.validate(label=label, guidance=guidance, steps=steps, seed=seed)
        self.fig: Figure | None = None
        self.x: torch.Tensor | None = None          # the last samples
        self.read: torch.Tensor | None = None       # the class the classifier reads in each of them
        self.seconds = 0.0
        self.ui = self.controls = None              # set by widget(): the VBox, and its controls by setting name

    @classmethod
    def from_assets(cls, **kwargs) -> GuidanceExplorer:
        """The explorer on the shipped MNIST UNet, read by the shipped MNIST classifier."""
        return cls(assets.load_mnist_unet(), assets.load_mnist_classifier(), **kwargs)

    def validate(self, **changes) -> dict:
        """The settings `set(**changes)` would make, checked (ValueError names a bad one); changes nothing."""
        s = {**self.settings, **changes}
        unknown = set(s) - {"label", "guidance", "steps", "seed"}
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; the guidance explorer has label, guidance, steps, seed")
        label = check_int(s["label"], "label", lo=0, hi=self.trained.num_classes - 1)
        steps = check_int(s["steps"], "steps", lo=1, hi=self.trained.schedule().T)
        seed = check_int(s["seed"], "seed", lo=0, hi=2**40)
        return dict(label=label, guidance=round(check_guidance(s["guidance"]), 6), steps=steps, seed=seed)

    def compute(self, s: dict) -> None:
        """Sample (same x_T for every w: the seed's) and read the samples with the classifier (`set` calls it)."""
        with torch.no_grad(), torch_threads(self.threads):
            self.x = generate(self.trained, self.n, self.sampler, steps=s["steps"], labels=s["label"],
                              guidance=s["guidance"], generator=torch.Generator().manual_seed(s["seed"])).x.cpu()
            self.read = self.classifier(self.x.clamp(-1, 1).float()).argmax(1) if self.classifier else None

    def accuracy(self) -> float | None:
        """Share of the last samples the classifier reads as the asked-for class (None without a classifier)."""
        if self.read is None:
            return None
        return (self.read == self.settings["label"]).double().mean().item()

    def _draw(self) -> None:
        s, K = self.settings, self.trained.num_classes
        self.fig = self.fig or Figure(figsize=self.figsize, dpi=self.dpi)
        self.fig.clear()
        ax_grid = self.fig.add_axes([0.01, 0.04, 0.5, 0.84])
        cols = int(self.n ** 0.5 + 0.999)
        rows = -(-self.n // cols)
        tiles = torch.cat([self.x.float(), self.x.new_full((rows * cols - self.n, *self.x.shape[1:]), 1.0).float()])
        ax_grid.imshow(mosaic(tiles.reshape(rows, cols, *self.x.shape[1:])).numpy(), cmap="gray", vmin=-1, vmax=1,
                       interpolation="nearest")
        ax_grid.set_axis_off()
        title = f"class {s['label']}, w = {s['guidance']:g}, {self.sampler} {s['steps']} steps, seed {s['seed']}"
        if self.read is not None:
            ax_bar = self.fig.add_axes([0.6, 0.16, 0.37, 0.68])
            read = torch.bincount(self.read, minlength=K)
            bars = ax_bar.bar(range(K), read.numpy(), color="0.6")
            bars[s["label"]].set_color("tab:blue")
            ax_bar.set(xticks=range(K), ylim=(0, self.n), xlabel="class the classifier reads", ylabel="samples")
            title += f": the classifier reads {int(read[s['label']])}/{self.n} as {s['label']}"
        self.fig.suptitle(title, fontsize=9)

    def widget(self):
        """ipywidgets controls (class, w, steps, seed) over the figure, shown as a PNG."""
        import ipywidgets as W

        s, K = self.settings, self.trained.num_classes
        return panel(self, {
            "label": W.Dropdown(options=list(range(K)), value=s["label"], description="class"),
            "guidance": W.FloatSlider(value=min(s["guidance"], W_MAX), min=0.0, max=W_MAX, step=0.5,
                                      continuous_update=False, description="w"),
            "steps": W.SelectionSlider(options=sorted(set(STEP_CHOICES) | {s["steps"]}), value=s["steps"],
                                       continuous_update=False, description="steps"),
            "seed": W.BoundedIntText(value=s["seed"], min=0, max=2**31 - 1, description="seed",
                                     layout=W.Layout(width="160px")),
        })
