"""Checkpoints (to resume training), exported models and classifier files (to ship), and loading them as `Trained`.

A checkpoint (`.pt`, torch.save) holds the weights, the EMA weights, the optimiser state, the step,
every RNG state, the schedule's betas, the model config and the objective.  An exported model
(`.safetensors`) holds only the EMA weights (fp16 or fp32) plus the same metadata: what `diffedu/shipped/`
ships.  The digits classifier is shipped the same way (`save_classifier`).

Writing: every file goes to a temporary `.NAME.tmp-PID` beside it, is fsynced and moved into place
with os.replace, so a run killed mid-write leaves the last complete file intact; a write that
raises (disk full) removes its temporary; `remove_stale_temps` removes those of killed writers.

Reading refuses damaged files with a ValueError naming the file: a checkpoint's zip CRC-32s are
checked before `torch.load(weights_only=True)` (no pickled code runs); a .safetensors file written
here records the SHA-256 of its tensor data ("sha256") and of its other metadata
("metadata_sha256"), checked when present (the shipped assets predate them: the manifest hashes
those).  A model is built on the meta device first, its parameter count bounded (`MAX_PARAMETERS`)
and every weight's name and shape compared with the file before any memory is allocated.

Imports: torch, safetensors, diffedu core maths (schedules), diffedu.models, diffedu.trained.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as save_bytes
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
MAX_PARAMETERS = 10**9   # a file asking for more is refused before anything is allocated (4 GB in float32)

# ---------------------------------------------------------------------------------------------
# Atomic writes and their temporaries.

_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>[0-9]+)$")


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _write_atomic(path, write) -> Path:
    """write(tmp) into `.NAME.tmp-PID`, fsync, publish; on any failure remove the temporary and re-raise
    (an OSError, e.g. disk full, re-raised with the same errno and a message naming `path`)."""
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            message = f"writing {str(path)!r} failed, the previous file (if any) is intact: {err.strerror or err}"
            raise (OSError(err.errno, message) if err.errno is not None else OSError(message)) from err
        raise
    return path


def publish(tmp: Path, path: Path) -> None:
    """Give a finished temporary file the usual permissions (0666 less the umask) and move it into place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def _pid_running(pid: int) -> bool:
    """Whether a process with this id exists (os.kill(pid, 0); one we may not signal exists too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def remove_stale_temps(folder) -> list[Path]:
    """Remove the `.NAME.tmp-PID` files that writes killed mid-way left in `folder` (those whose PID is
    no running process); return the removed paths.  Temporaries of live writers are left alone (and,
    conservatively, those whose PID a new process has since taken)."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in sorted(folder.iterdir()):
        m = _TMP_NAME.match(p.name)
        if m is None or p.is_symlink() or not p.is_file() or _pid_running(int(m["pid"])):
            continue
        try:
            p.unlink()
        except FileNotFoundError:  # another cleaner got there first
            continue
        removed.append(p)
    return removed


# ---------------------------------------------------------------------------------------------
# Training checkpoints (.pt).


def save_checkpoint(path, *, model: nn.Module, ema: nn.Module, optimizer, step: int, objective: str,
                    betas=None, sigma_data: float = 0.5, rng: dict | None = None, meta: dict | None = None,
                    **extra) -> None:
    """Write a training checkpoint atomically (tmp file in the same folder, fsync, os.replace)."""
    state = dict(format=FORMAT, version=VERSION, model=model.state_dict(), ema=ema.state_dict(),
                 optimizer=optimizer.state_dict(), step=int(step), rng=rng or {},
                 betas=None if betas is None else torch.as_tensor(betas, dtype=torch.float64).cpu(),
                 model_config=dict(model.config), objective=objective, sigma_data=float(sigma_data),
                 meta=meta or {}, **extra)

    def write(tmp):
        with open(tmp, "wb") as f:
            torch.save(state, f)

    _write_atomic(path, write)


def config_diff(saved: dict, wanted: dict) -> list[str]:
    """'key: checkpoint A, requested B' for every key where two model configs differ."""
    keys = sorted(set(saved) | set(wanted))
    return [f"{k}: checkpoint {saved.get(k)!r}, requested {wanted.get(k)!r}" for k in keys if saved.get(k) != wanted.get(k)]


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"


def _check_zip(path: Path) -> None:
    """ValueError naming the file (and the member) unless every member of the zip passes its CRC-32."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except Exception as err:  # not a zip, a truncated central directory, a damaged local header
        raise ValueError(f"checkpoint {str(path)!r} is truncated or corrupt (not a readable zip archive: "
                         f"{_first_line(err)})") from None
    if bad is not None:
        raise ValueError(f"checkpoint {str(path)!r} is corrupt: its member {bad!r} fails its CRC-32 check "
                         f"(a damaged byte); use an earlier checkpoint or retrain")


def load_checkpoint(path, model_config: dict | None = None, device="cpu") -> dict:
    """Read a checkpoint written by `save_checkpoint`; ValueError naming the file if it is missing,
    truncated, corrupt (a zip CRC-32 fails), not a diffedu checkpoint, or holds a model whose config
    differs from `model_config`."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    _check_zip(path)
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # zip errors, unpickling errors, EOF: all mean "not a readable checkpoint"
        raise ValueError(f"checkpoint {str(path)!r} is truncated or corrupt (torch.load failed: "
                         f"{_first_line(err)})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a diffedu training checkpoint (no format tag {FORMAT!r})")
    missing = [k for k in REQUIRED if k not in ck]
    if missing:
        raise ValueError(f"checkpoint {str(path)!r} is incomplete: missing {', '.join(missing)}")
    if ck["version"] != VERSION:
        raise ValueError(f"checkpoint {str(path)!r} has format version {ck['version']}, this diffedu reads {VERSION}")
    if not isinstance(ck["model_config"], dict):
        raise ValueError(f"checkpoint {str(path)!r}: model_config must be a dict, got {type(ck['model_config']).__name__}")
    if model_config is not None and dict(ck["model_config"]) != dict(model_config):
        raise ValueError(f"checkpoint {str(path)!r} holds a different model: "
                         + "; ".join(config_diff(dict(ck["model_config"]), dict(model_config))))
    return ck


# ---------------------------------------------------------------------------------------------
# .safetensors files: exported models and the classifier, with content hashes.


def _metadata_sha256(metadata: dict) -> str:
    """SHA-256 of the metadata entries other than the two hashes, as sorted JSON."""
    rest = {k: v for k, v in metadata.items() if k not in ("sha256", "metadata_sha256")}
    return hashlib.sha256(json.dumps(rest, sort_keys=True).encode()).hexdigest()


def _payload_offset(head: bytes, size: int, what: str) -> int:
    """Where the tensor data start: after the 8-byte little-endian header length and the JSON header."""
    if len(head) < 8 or 8 + int.from_bytes(head[:8], "little") > size:
        raise ValueError(f"{what}: the header is longer than the file")
    return 8 + int.from_bytes(head[:8], "little")


def _payload_sha256(path) -> str:
    """SHA-256 of a .safetensors file's tensor data (everything after its header)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(_payload_offset(f.read(8), os.fstat(f.fileno()).st_size, str(path)))
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _save_safetensors(tensors: dict, path, metadata: dict) -> Path:
    """save_file with "sha256" (of the tensor data) and "metadata_sha256" added, written atomically."""
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    blob = save_bytes(tensors, metadata=metadata)          # the same tensors lay out the same bytes
    digest = hashlib.sha256(memoryview(blob)[_payload_offset(blob[:8], len(blob), "in memory"):]).hexdigest()
    del blob
    md = dict(metadata, sha256=digest)
    md["metadata_sha256"] = _metadata_sha256(md)

    def write(tmp):
        save_file(tensors, str(tmp), metadata=md)
        if _payload_sha256(tmp) != digest:
            raise RuntimeError(f"safetensors laid out the tensors of {str(path)!r} differently twice; not written")

    return _write_atomic(path, write)


def _read_safetensors(path, what: str, fmt: str) -> tuple[dict, dict]:
    """(metadata, tensors) of a diffedu .safetensors file whose format tag is `fmt`; ValueError naming
    the file when it is missing, unreadable, damaged (a recorded SHA-256 differs) or another kind of file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}   # at most the file's size
    except Exception as err:
        raise ValueError(f"{what} file {str(path)!r} is truncated or corrupt ({type(err).__name__}: {err})") from None
    _check_hashes(path, what, md)
    if md.get("format") != fmt:
        raise ValueError(f"{str(path)!r} is not a diffedu {what} file (no format tag {fmt!r})")
    return md, tensors


def _check_hashes(path: Path, what: str, md: dict) -> None:
    """Compare the SHA-256s recorded in the metadata (when there are any) with the file's content."""
    if "metadata_sha256" in md and md["metadata_sha256"] != _metadata_sha256(md):
        raise ValueError(f"{what} file {str(path)!r} is corrupt: its metadata do not match their recorded "
                         f"SHA-256 (a damaged byte in the header)")
    if "sha256" in md:
        digest = _payload_sha256(path)
        if digest != md["sha256"]:
            raise ValueError(f"{what} file {str(path)!r} is corrupt: its tensor data have SHA-256 {digest}, "
                             f"the file records {md['sha256']} (a damaged byte); export or save it again")


def _metadata(path: Path, md: dict, key: str, parse=json.loads):
    """One metadata entry, parsed; ValueError naming the file and the entry when it is absent or malformed."""
    if key not in md:
        raise ValueError(f"{str(path)!r} has no {key!r} entry in its metadata")
    try:
        return parse(md[key])
    except ValueError as err:
        raise ValueError(f"{str(path)!r}: metadata entry {key!r} is malformed ({err}): {md[key][:200]!r}") from None


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
    return _save_safetensors(tensors, out_path, meta)


def _read_export(path: Path):
    md, tensors = _read_safetensors(path, "model", "diffedu-model")
    weights = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
    return (_metadata(path, md, "model_config"), _metadata(path, md, "objective", str),
            _metadata(path, md, "sigma_data", float), _metadata(path, md, "meta"), weights, tensors.get("schedule.betas"))


def save_classifier(clf: DigitClassifier, path, meta: dict | None = None) -> None:
    """Write the classifier's weights and config as .safetensors (float32)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _save_safetensors({k: v.detach().float() for k, v in clf.state_dict().items()}, path,
                      {"format": "diffedu-classifier", "model_config": json.dumps(clf.config),
                       "meta": json.dumps(meta or {})})


# ---------------------------------------------------------------------------------------------
# Building a network for a file's weights: on the meta device first.


def model_for_weights(path, config, weights: dict, device="cpu") -> nn.Module:
    """The network of `config` holding `weights` (a state_dict read from `path`), on `device`.

    Built on the meta device first: the config is checked by the constructors, the parameter count
    bounded by MAX_PARAMETERS and every name and shape compared with `weights`, each failure a
    ValueError naming the file, before any memory is allocated; then materialised and loaded.
    """
    where = str(path)
    try:
        with torch.device("meta"):
            model = build_model(config)
    except ValueError as err:
        raise ValueError(f"{where!r}: implausible model config: {err}") from None
    n = sum(p.numel() for p in model.parameters())
    if n > MAX_PARAMETERS:
        raise ValueError(f"{where!r}: its model config {config} asks for {n:,} parameters, more than the "
                         f"{MAX_PARAMETERS:,} this course loads (diffedu.checkpoint.MAX_PARAMETERS)")
    expected = model.state_dict()
    for key, value in expected.items():
        if key not in weights:
            raise ValueError(f"{where!r}: weights do not fit a model with config {config}: {key!r} is missing")
        if tuple(weights[key].shape) != tuple(value.shape):
            raise ValueError(f"{where!r}: weights do not fit a model with config {config}: {key!r} has shape "
                             f"{tuple(weights[key].shape)} in the file, the model needs {tuple(value.shape)}")
    extra = sorted(set(weights) - set(expected))
    if extra:
        raise ValueError(f"{where!r}: weights do not fit a model with config {config}: unexpected {extra[0]!r}"
                         + (f" and {len(extra) - 1} more" if len(extra) > 1 else ""))
    unsaved = {name for name, _ in model.named_buffers()} - set(expected)
    model = build_model(config).to(device) if unsaved else model.to_empty(device=device)
    model.load_state_dict(weights)
    return model.eval().requires_grad_(False)


def load_model(path, device="cpu", ema: bool = True) -> Trained:
    """A Trained model from a training checkpoint (.pt, EMA weights unless ema=False) or an export (.safetensors)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        config, objective, sigma_data, meta, weights, betas = _read_export(path)
    else:
        ck = load_checkpoint(path)
        config, objective, sigma_data = dict(ck["model_config"]), ck["objective"], ck["sigma_data"]
        meta, weights, betas = dict(ck["meta"], step=ck["step"]), ck["ema" if ema else "model"], ck["betas"]
    model = model_for_weights(path, config, weights, device)
    sched = Schedule(betas) if betas is not None else None
    return Trained(model, objective, sched, sigma_data, list(meta.get("shape", [])), meta)


def load_classifier_file(path, device="cpu") -> DigitClassifier:
    """A DigitClassifier (eval mode) from a file written by `save_classifier`."""
    path = Path(path)
    md, state = _read_safetensors(path, "classifier", "diffedu-classifier")
    config = _metadata(path, md, "model_config")
    if not isinstance(config, dict) or config.get("kind", "classifier") != "classifier":
        raise ValueError(f"{str(path)!r}: model_config must describe a 'classifier', got {config!r}")
    clf = model_for_weights(path, dict(config, kind="classifier"), state, device)
    clf.meta = _metadata(path, md, "meta") if "meta" in md else {}
    return clf
