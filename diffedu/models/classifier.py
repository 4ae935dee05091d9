"""A tiny CNN digit classifier whose penultimate features feed the course's Fréchet distance.

This is NOT Inception FID.  Its numbers are comparable only with other numbers computed with the
same shipped classifier (`diffedu.assets.load_classifier()`), on the same resolution, in this
course: a sample set "close to the real digits in this network's feature space".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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
    B, _, H, W = x.shape
    pad = F.pad(x, (1, 1, 1, 1), value=-1.0)
    dx, dy = (torch.randint(0, 3, (B,), generator=generator) for _ in range(2))
    return torch.stack([pad[i, :, dy[i]:dy[i] + H, dx[i]:dx[i] + W] for i in range(B)])


def train_classifier(images: torch.Tensor, labels: torch.Tensor, steps: int = 3000, batch_size: int = 128,
                     lr: float = 2e-3, seed: int = 0, holdout: int = 297, noise: float = 0.1, progress: bool = False):
    """Fit a DigitClassifier with Adam on `images`, holding out the last `holdout` (after a seeded
    shuffle) for a test accuracy.  Returns (classifier in eval mode, test accuracy).

    Training adds 1-pixel shifts and a little Gaussian noise (std `noise`), so that the
    classifier does not reject samples for tiny defects that a person would not notice.
    """
    steps = check_int(steps, "steps", lo=1)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(images), generator=g)
    test, train = perm[len(images) - holdout:], perm[:len(images) - holdout]
    clf = DigitClassifier(image_size=images.shape[-1])
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="classifier")
    for _ in it:
        idx = train[torch.randint(len(train), (batch_size,), generator=g)]
        x = _shift(images[idx], g) + noise * torch.randn(images[idx].shape, generator=g)
        loss = F.cross_entropy(clf(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    clf.eval()
    with torch.no_grad():
        acc = (clf(images[test]).argmax(1) == labels[test]).float().mean().item() if holdout else float("nan")
    return clf, acc


def save_classifier(clf: DigitClassifier, path, meta: dict | None = None) -> None:
    """Write the classifier's weights and config as .safetensors (float32)."""
    import json
    import os
    from pathlib import Path

    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.detach().float().contiguous() for k, v in clf.state_dict().items()}, str(tmp),
              metadata={"format": "diffedu-classifier", "model_config": json.dumps(clf.config),
                        "meta": json.dumps(meta or {})})
    os.replace(tmp, path)


def load_classifier_file(path, device="cpu") -> DigitClassifier:
    """A DigitClassifier (eval mode) from a file written by `save_classifier`."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"classifier file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise ValueError(f"classifier file {str(path)!r} is truncated or corrupt ({type(err).__name__}: {err})") from None
    if md.get("format") != "diffedu-classifier":
        raise ValueError(f"{str(path)!r} is not a diffedu classifier file")
    config = json.loads(md["model_config"])
    clf = DigitClassifier(**{k: v for k, v in config.items() if k != "kind"})
    clf.load_state_dict(state)
    clf.meta = json.loads(md.get("meta", "{}"))
    return clf.to(device).eval().requires_grad_(False)
