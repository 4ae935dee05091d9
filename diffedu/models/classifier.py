"""A tiny CNN digit classifier whose penultimate features feed the course's Fréchet distance.

This is NOT Inception FID.  Its numbers are comparable only with other numbers computed with the
same shipped classifier (`diffedu.assets.load_classifier()`), on the same resolution, in this
course: a sample set "close to the real digits in this network's feature space".
Saving and loading the classifier's file is io: `diffedu.checkpoint.save_classifier` / `load_classifier_file`.

Imports: torch, tqdm, _checks.  Layer models.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .._checks import check_int


class DigitClassifier(nn.Module):
    """conv-conv-pool-conv-pool -> global average -> `features` (penultimate) -> 10 logits.

    Takes (B, 1, S, S) digits in [-1, 1], S = image_size (8 or 16; any S divisible by 4 works).
    `features(x)` returns the (B, feature_dim) vectors that the Fréchet distance compares.
    """

    def __init__(self, image_size: int = 16, width: int = 32, feature_dim: int = 64):
        super().__init__()
        self.config = dict(kind="classifier", image_size=check_int(image_size, "image_size", lo=4),
                           width=check_int(width, "width", lo=1), feature_dim=check_int(feature_dim, "feature_dim", lo=1))
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
        )
        self.fc = nn.Linear(2 * w, feature_dim)
        self.head = nn.Linear(feature_dim, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config["image_size"]
        if x.dim() != 4 or x.shape[1:] != (1, s, s):
            raise ValueError(f"DigitClassifier expects x of shape (B, 1, {s}, {s}), got {tuple(x.shape)}")
        return F.relu(self.fc(self.body(x).mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 1 pixel (padding with the background value -1): cheap augmentation."""
    B, C, H, W = x.shape
    pad = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dx, dy = (torch.randint(0, 3, (B,), generator=generator) for _ in range(2))
    rows = (dy[:, None] + torch.arange(H))[:, None, :, None]                     # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(W))[:, None, None, :]                     # (B, 1, 1, W)
    return pad[torch.arange(B)[:, None, None, None], torch.arange(C)[None, :, None, None], rows, cols]


def outliers(images: torch.Tensor, labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n images that are not digits, a quarter of each kind: uniform noise, smooth noise blobs, the
    average of two different digits (a hybrid), and a digit under heavy noise (std 0.8)."""
    k = n // 4
    shape = (k, *images.shape[1:])
    uniform = torch.rand(shape, generator=generator) * 2 - 1
    blobs = F.avg_pool2d(torch.rand(shape, generator=generator) * 2 - 1, 3, stride=1, padding=1)
    blobs = blobs / blobs.abs().amax(dim=(1, 2, 3), keepdim=True)
    i, j = (torch.randint(len(images), (k,), generator=generator) for _ in range(2))
    j = torch.where(labels[i] == labels[j], torch.roll(j, 1), j)   # mostly different classes
    hybrid = (images[i] + images[j]) / 2
    noisy = (images[j] + 0.8 * torch.randn(shape, generator=generator)).clamp(-1, 1)
    return torch.cat([uniform, blobs, hybrid, noisy])


def train_classifier(images: torch.Tensor, labels: torch.Tensor, steps: int = 3000, batch_size: int = 128,
                     lr: float = 2e-3, seed: int = 0, holdout: int = 297, noise: float = 0.1,
                     outlier_weight: float = 0.5, progress: bool = False, test=None):
    """Fit a DigitClassifier with Adam on `images`, holding out the last `holdout` (after a seeded
    shuffle) for a test accuracy.  Returns (classifier in eval mode, test accuracy).
    `test=(images, labels)`: a separate test split (MNIST's); then all of `images` trains (holdout 0).

    Real digits get 1-pixel shifts and a little Gaussian noise (std `noise`), so that tiny defects
    a person would not notice are not punished.  Non-digits (`outliers`: noise, blobs, hybrids of
    two digits, heavily noised digits) are trained towards the uniform distribution over the 10
    classes ("outlier exposure", Hendrycks et al. 2019), so that the recognisable-digit rate of
    garbage is near 0 instead of whatever an over-confident classifier says.
    """
    steps = check_int(steps, "steps", lo=1)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    holdout = 0 if test is not None else holdout
    perm = torch.randperm(len(images), generator=g)
    held, train = perm[len(images) - holdout:], perm[:len(images) - holdout]
    test_x, test_y = test if test is not None else (images[held], labels[held])
    clf = DigitClassifier(image_size=images.shape[-1])
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    it = range(steps)
    if progress:
        it = tqdm(it, desc="classifier")
    for _ in it:
        idx = train[torch.randint(len(train), (batch_size,), generator=g)]
        x = _shift(images[idx], g) + noise * torch.randn(images[idx].shape, generator=g)
        junk = outliers(images[train], labels[train], batch_size // 2, g)
        loss = F.cross_entropy(clf(x), labels[idx]) - outlier_weight * F.log_softmax(clf(junk), dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    clf.eval()
    with torch.no_grad():
        acc = (clf(test_x).argmax(1) == test_y).float().mean().item() if len(test_y) else float("nan")
    return clf, acc
