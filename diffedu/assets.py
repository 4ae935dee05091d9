"""The trained models shipped inside the package (`diffedu/shipped/`), loaded in well under a second, checked against their SHA-256.

    load_digits_unet()  the digits UNet (eps-prediction, linear schedule, T = 1000), EMA weights
    load_mlp()          the 2-D MLP (eps-prediction on the eight-Gaussian mixture)
    load_classifier()   the small digits CNN behind `diffedu.metrics.digits_fid` / `recognisable_rate`

`diffedu/shipped/manifest.json` records each file's SHA-256, size and the exact command that made it
(see `diffedu/shipped/README.md`).  They are package data: a clone, an editable install and an installed wheel
all find them with `importlib.resources`.  A file whose hash differs from the manifest is refused with an
error that names it: re-download the repository file, or retrain with the recorded command.

Imports: importlib.resources, diffedu.checkpoint (io).
"""
from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path

from .checkpoint import load_classifier_file, load_model

ASSETS = Path(str(resources.files("diffedu") / "shipped"))     # a folder on disk: installs are not zipped
MANIFEST = "manifest.json"


def sha256(path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_entry(name: str, root=None) -> dict:
    """The manifest's entry for `name`; ValueError naming the manifest and what is wrong with it when
    it is missing, not JSON, has no "files" table, or the entry is absent or has no valid "sha256"."""
    manifest_path = (Path(root) if root is not None else ASSETS) / MANIFEST
    where = str(manifest_path)
    if not manifest_path.is_file():
        raise ValueError(f"no asset manifest at {where!r}; the shipped models are package data in diffedu/shipped/: reinstall diffedu")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"asset manifest {where!r} is not UTF-8 text ({err}); restore it (git checkout)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"asset manifest {where!r} is not valid JSON: {err.msg} at line {err.lineno} column "
                         f"{err.colno}; restore it (git checkout)") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise ValueError(f"asset manifest {where!r} has no \"files\" table (an object mapping each file name "
                         f"to its sha256); restore it (git checkout)")
    entry = files.get(name)
    if entry is None:
        raise ValueError(f"{name!r} is not listed in {where!r}")
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"asset manifest {where!r}: the entry for {name!r} has no valid \"sha256\" (64 lowercase "
                         f"hex digits), got {digest!r}; restore the manifest (git checkout)")
    return entry


def asset_path(name: str, root=None) -> Path:
    """The path of a shipped file after checking it exists and matches the manifest's SHA-256."""
    root = Path(root) if root is not None else ASSETS
    entry = manifest_entry(name, root)
    path = root / name
    if not path.is_file():
        raise ValueError(f"asset {str(path)!r} is missing (listed in {MANIFEST})")
    digest = sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(f"asset {str(path)!r} has SHA-256 {digest}, but {MANIFEST} expects {entry['sha256']}: "
                         f"the file is damaged or was replaced; restore it (git checkout) or retrain it with "
                         f"the command in diffedu/shipped/README.md and update the manifest")
    return path


def load_digits_unet(device="cpu", root=None):
    """The shipped digits UNet as a `Trained` (.model is eps_model(x_t, t); .sched the T = 1000 schedule)."""
    return load_model(asset_path("digits_unet.safetensors", root), device=device)


def load_mlp(device="cpu", root=None):
    """The shipped 2-D MLP as a `Trained` (eps-prediction on the eight-Gaussian mixture)."""
    return load_model(asset_path("mixture_mlp.safetensors", root), device=device)


def load_classifier(device="cpu", root=None):
    """The shipped digits classifier (`DigitClassifier`, eval mode; 8x8 digits in [-1, 1])."""
    return load_classifier_file(asset_path("digits_classifier.safetensors", root), device=device)


def load_mnist_unet(device="cpu", root=None):
    """The shipped class-conditional MNIST UNet as a `Trained` (28x28, eps-prediction, linear schedule, T = 1000;
    `.sample(n, labels=..., guidance=w)` for classifier-free guidance)."""
    return load_model(asset_path("mnist_unet.safetensors", root), device=device)


def load_mnist_classifier(device="cpu", root=None):
    """The shipped MNIST classifier (`DigitClassifier`, eval mode; (N, 1, 28, 28) in [-1, 1] -> logits (N, 10))."""
    return load_classifier_file(asset_path("mnist_classifier.safetensors", root), device=device)


def write_manifest(entries: dict, root=None) -> Path:
    """(Re)write diffedu/shipped/manifest.json: {name: {"command": ..., "wall_seconds": ...}}, hashes computed here."""
    root = Path(root) if root is not None else ASSETS
    files = {}
    for name, info in sorted(entries.items()):
        path = root / name
        files[name] = dict(info, sha256=sha256(path), bytes=path.stat().st_size)
    out = root / MANIFEST
    out.write_text(json.dumps({"files": files}, indent=2) + "\n")
    return out
