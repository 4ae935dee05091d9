"""Checkpoints (to resume training), exported models and classifier files (to ship), and loading them as `Trained`.

A checkpoint (`.pt`, torch.save) holds the weights, the EMA weights, the optimiser state, the step,
every RNG state, the schedule's betas, the model config and the objective; it is written to a
temporary file and moved into place with os.replace, so a run killed mid-write leaves the last
complete checkpoint intact.  Loading uses `torch.load(weights_only=True)`: no pickled code runs.
An exported model (`.safetensors`) holds only the EMA weights (fp16 or fp32) plus the same
metadata: what `assets/` ships.  The digits classifier is shipped the same way (`save_classifier`).

Imports: torch, safetensors, diffedu core maths (schedules), diffedu.models, diffedu.trained.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from .models import build_model
from .models.classifier import DigitClassifier
from .schedules import Schedule
from .trained import Trained

FORMAT = "diffedu-checkpoint"
VERSION = 1
REQUIRED = ("format", "version", "model", "ema", "optimizer", "step", "rng", "betas", "model_config",
            "objective", "sigma_data", "meta")


def save_checkpoint(path, *, model: nn.Module, ema: nn.Module, optimizer, step: int, objective: str,
                    betas=None, sigma_data: float = 0.5, rng: dict | None = None, meta: dict | None = None,
                    **extra) -> None:
    """Write a training checkpoint atomically (tmp file in the same folder, fsync, os.replace)."""
    path = Path(path)
    state = dict(format=FORMAT, version=VERSION, model=model.state_dict(), ema=ema.state_dict(),
                 optimizer=optimizer.state_dict(), step=int(step), rng=rng or {},
                 betas=None if betas is None else torch.as_tensor(betas, dtype=torch.float64).cpu(),
                 model_config=dict(model.config), objective=objective, sigma_data=float(sigma_data),
                 meta=meta or {}, **extra)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def config_diff(saved: dict, wanted: dict) -> list[str]:
    """'key: checkpoint A, requested B' for every key where two model configs differ."""
    keys = sorted(set(saved) | set(wanted))
    return [f"{k}: checkpoint {saved.get(k)!r}, requested {wanted.get(k)!r}" for k in keys if saved.get(k) != wanted.get(k)]


def load_checkpoint(path, model_config: dict | None = None, device="cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`; ValueError naming the file if it is missing,
    truncated, corrupt, not a diffedu checkpoint, or holds a model whose config differs from `model_config`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # zip errors, unpickling errors, EOF: all mean "not a readable checkpoint"
        raise ValueError(f"checkpoint {str(path)!r} is truncated or corrupt (torch.load failed: "
                         f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a diffedu training checkpoint (no format tag {FORMAT!r})")
    missing = [k for k in REQUIRED if k not in ck]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is incomplete: missing {', '.join(missing)}")
    if ck["version"] != VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has format version {ck['version']}, this diffedu reads {VERSION}")
    if model_config is not None and dict(ck["model_config"]) != dict(model_config):
        raise ValueError(f"checkpoint {str(path)!r} holds a different model: "
                         + "; ".join(config_diff(dict(ck["model_config"]), dict(model_config))))
    return ck


def export_model(ckpt_path, out_path, dtype: str = "float32") -> Path:
    """Write the EMA weights of a training checkpoint (cast to `dtype`) and its metadata as .safetensors."""
    ck = load_checkpoint(ckpt_path)
    dt = {"float32": torch.float32, "float16": torch.float16}[dtype]
    tensors = {f"ema.{k}": v.to(dt) if v.is_floating_point() else v for k, v in ck["ema"].items()}
    if ck["betas"] is not None:
        tensors["schedule.betas"] = ck["betas"]
    meta = {"format": "diffedu-model", "version": str(VERSION), "model_config": json.dumps(ck["model_config"]),
            "objective": ck["objective"], "sigma_data": repr(ck["sigma_data"]),
            "meta": json.dumps(dict(ck["meta"], step=ck["step"]))}
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
    publish(tmp, out_path)
    return out_path


def publish(tmp: Path, path: Path) -> None:
    """Give a finished temporary file the usual permissions (0666 less the umask) and move it into place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def load_model(path, device="cpu", ema: bool = True) -> Trained:
    """A Trained model from a training checkpoint (.pt, EMA weights unless ema=False) or an export (.safetensors)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        config, objective, sigma_data, meta, weights, betas = _read_export(path)
    else:
        ck = load_checkpoint(path)
        config, objective, sigma_data = dict(ck["model_config"]), ck["objective"], ck["sigma_data"]
        meta, weights, betas = dict(ck["meta"], step=ck["step"]), ck["ema" if ema else "model"], ck["betas"]
    model = build_model(config)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
    except RuntimeError as err:
        raise ValueError(f"{str(path)!r}: weights do not fit a model with config {config}: {err}") from None
    model.to(device).eval().requires_grad_(False)
    sched = Schedule(betas) if betas is not None else None
    return Trained(model, objective, sched, sigma_data, list(meta.get("shape", [])), meta)


def _read_safetensors(path, what: str, fmt: str) -> tuple[dict, dict]:
    """(metadata, tensors) of a diffedu .safetensors file whose format tag is `fmt`; ValueError naming
    the file when it is missing, unreadable or another kind of file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:
        raise ValueError(f"{what} file {str(path)!r} is truncated or corrupt ({type(err).__name__}: {err})") from None
    if md.get("format") != fmt:
        raise ValueError(f"{str(path)!r} is not a diffedu {what} file (no format tag {fmt!r})")
    return md, tensors


def _read_export(path: Path):
    md, tensors = _read_safetensors(path, "model", "diffedu-model")
    weights = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    return (json.loads(md["model_config"]), md["objective"], float(md["sigma_data"]), json.loads(md["meta"]),
            weights, tensors.get("schedule.betas"))


def save_classifier(clf: DigitClassifier, path, meta: dict | None = None) -> None:
    """Write the classifier's weights and config as .safetensors (float32)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.detach().float().contiguous() for k, v in clf.state_dict().items()}, str(tmp),
              metadata={"format": "diffedu-classifier", "model_config": json.dumps(clf.config),
                        "meta": json.dumps(meta or {})})
    publish(tmp, path)


def load_classifier_file(path, device="cpu") -> DigitClassifier:
    """A DigitClassifier (eval mode) from a file written by `save_classifier`."""
    md, state = _read_safetensors(path, "classifier", "diffedu-classifier")
    config = json.loads(md["model_config"])
    clf = DigitClassifier(**{k: v for k, v in config.items() if k != "kind"})
    clf.load_state_dict(state)
    clf.meta = json.loads(md.get("meta", "{}"))
    return clf.to(device).eval().requires_grad_(False)
