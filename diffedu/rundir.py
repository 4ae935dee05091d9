"""A training run's folder: one writer at a time, no run replaced by accident, nothing left half-written.

Imports: stdlib (os, fcntl where it exists, json, hashlib, socket), torch, PIL, diffedu.checkpoint
(remove_stale_temps).  Layer io.

`open_run(out, resume=..., overwrite=...)` is what `diffedu.training.train` wraps its loop in:

    lock        OUT/.lock, held with fcntl.flock (the kernel drops it when the holder dies, so a killed
                run never blocks the next one); it names the holder's PID and host for a second run's
                message.  Released on exit, also on error.
    temps       `.NAME.tmp-PID` files of writes killed mid-way are removed (checkpoint.remove_stale_temps)
    old runs    a folder holding a run (ckpt.pt, log.jsonl, samples_*.png) is refused unless the caller
                continues it (resume) or replaces it (overwrite, which removes those files and says so)

`trim_log` repairs log.jsonl for a resume, and `data_fingerprint` / `fingerprint_diff` record and
compare what a run trained on, so a resume on other data is refused.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path

try:                 # POSIX flock; Windows has none, and the lock falls back to O_CREAT | O_EXCL
    import fcntl
except ImportError:  # pragma: no cover - not on this project's machines
    fcntl = None

import torch
from PIL import Image

from .checkpoint import remove_stale_temps

CKPT_NAME = "ckpt.pt"
LOG_NAME = "log.jsonl"
LOCK_NAME = ".lock"
SAMPLES_GLOB = "samples_*.png"


class RunFolderBusy(RuntimeError):
    """Another process is training into the same out folder."""


def notice(message: str) -> None:
    """Say on stderr what a run did on its own (took over a lock, dropped a line, removed old files)."""
    print(f"notice: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def open_run(out, *, resume: bool, overwrite: bool):
    """Create and lock the run folder `out`, clean it, refuse or replace an old run; yields its Path."""
    out = Path(out)
    if resume and overwrite:
        raise ValueError("resume=True (--resume) continues the run in the out folder and overwrite=True "
                         "(--overwrite) replaces it: pass one of them, not both")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"out folder {str(out)!r} is a file, not a folder") from None
    except OSError as err:
        raise OSError(err.errno, f"cannot create the out folder: {err.strerror}", str(out)) from None
    lock = RunLock(out)
    lock.acquire()
    try:
        for path in remove_stale_temps(out):
            notice(f"removed {path.name}, a temporary file of a write that was killed mid-way")
        old = run_files(out)
        if old and overwrite:
            for path in old:
                path.unlink()
            notice(f"overwrite: removed the old run in {out} ({', '.join(p.name for p in old)}); starting afresh")
        elif old and not resume:
            raise ValueError(f"out folder {str(out)!r} already holds a run ({_names(old)}); pass resume=True "
                             f"(--resume) to continue it, overwrite=True (--overwrite) to replace it, "
                             f"or choose another out folder")
        yield out
    finally:
        lock.release()


def run_files(out: Path) -> list[Path]:
    """The files of a run in `out`: ckpt.pt, log.jsonl and the sample grids."""
    named = [out / n for n in (CKPT_NAME, LOG_NAME) if (out / n).exists()]
    return named + sorted(out.glob(SAMPLES_GLOB))


def _names(paths: list[Path]) -> str:
    grids = [p for p in paths if p.match(SAMPLES_GLOB)]
    names = [p.name for p in paths if p not in grids]
    return ", ".join(names + ([f"{len(grids)} sample grid(s)"] if grids else []))


class RunLock:
    """OUT/.lock while a run writes into OUT, holding {"pid", "host", "started"} of its holder."""

    def __init__(self, folder):
        self.path = Path(folder) / LOCK_NAME
        self.fd = None

    def acquire(self) -> None:
        """Take the lock, or raise RunFolderBusy naming the process that holds it."""
        if fcntl is None:
            return self._acquire_exclusive()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise self._busy(holder) from None
            except BaseException:
                os.close(fd)
                raise
            # a holder that was releasing may have removed the file between our open and our flock
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        left = _read_holder(fd)
        if left:   # a killed run's lock: flock succeeded, so its holder is gone
            notice(f"took over the lock {self.path} left by {_describe(left)}, which is no longer running")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(_me()).encode())
        self.fd = fd

    def _acquire_exclusive(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            fd = os.open(self.path, os.O_RDONLY)
            holder = _read_holder(fd)
            os.close(fd)
            raise self._busy(holder, stale_hint=True) from None
        os.write(fd, json.dumps(_me()).encode())
        self.fd = fd

    def _busy(self, holder: dict, stale_hint: bool = False) -> RunFolderBusy:
        hint = f"; if no run is using it, delete {self.path}" if stale_hint else ""
        return RunFolderBusy(f"out folder {str(self.path.parent)!r} is in use by another training run "
                             f"({_describe(holder)}, lock file {self.path}); wait for it to finish, stop it, "
                             f"or choose another out folder{hint}")

    def release(self) -> None:
        """Remove the lock file, then drop the lock (in this order: no one can lock a file we then remove)."""
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def _read_holder(fd: int) -> dict:
    """The lock file's {"pid", "host", "started"}; {} when it is empty (a fresh file) or unreadable."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
    if not holder:
        return "a process that left no PID"
    text = f"PID {holder.get('pid')} on host {holder.get('host')!r}"
    return text + (f", started {holder['started']}" if holder.get("started") else "")


def trim_log(path: Path, step: int) -> None:
    """Keep log.jsonl's lines up to `step` (those past the checkpoint a run resumes from go).

    An incomplete last line (a write killed mid-way) is dropped with a notice; a line that is not a
    log record anywhere else is a ValueError naming the file and the line.  Rewritten atomically.
    """
    path = Path(path)
    if not path.exists():
        return
    text = path.read_text(errors="replace")
    lines = text.split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    keep, later = [], 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            line_step = record["step"]
            if isinstance(line_step, bool) or not isinstance(line_step, int):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            if i == last:
                notice(f"dropped line {i + 1} of {path}: it is incomplete ({_clip(line)}), "
                       f"a write that was killed mid-way")
                continue
            raise ValueError(f"{path}, line {i + 1}: not a log record ({_clip(line)}); remove that line to "
                             f"resume, or start afresh with overwrite=True (--overwrite)") from None
        if line_step <= step:
            keep.append(line)
        else:
            later += 1
    if later:
        notice(f"dropped {later} line(s) of {path} past step {step}, written after the checkpoint this run "
               f"resumes from")
    new = "".join(line + "\n" for line in keep)
    if new != text:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(new)
        os.replace(tmp, path)


def _clip(line: str, n: int = 60) -> str:
    return repr(line if len(line) <= n else line[:n] + "...")


def is_complete_png(path: Path) -> bool:
    """Whether `path` is a whole, readable PNG (a grid whose write was killed is not)."""
    try:
        with Image.open(path) as im:
            im.verify()
    except (OSError, SyntaxError, ValueError):
        return False
    return True


def data_fingerprint(data: torch.Tensor, source=None) -> dict:
    """What a run trains on: its source (a data set's name or a folder), count, item shape and the
    SHA-256 of the float32 tensor's bytes, stored in the checkpoint's meta for the resume check."""
    arr = data.detach().to("cpu", torch.float32).contiguous().numpy()
    return {"source": None if source is None else str(source), "n": int(data.shape[0]),
            "shape": list(data.shape[1:]), "sha256": hashlib.sha256(arr.data).hexdigest()}


def fingerprint_diff(saved: dict, now: dict) -> list[str]:
    """'what: checkpoint A, now B' for each way the data differ (the source counts only if the values do)."""
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {now[k]!r}" for k in ("n", "shape") if saved.get(k) != now[k]]
    if saved.get("sha256") != now["sha256"]:
        diff.append(f"values: SHA-256 {str(saved.get('sha256'))[:12]}... in the checkpoint, "
                    f"{now['sha256'][:12]}... now")
    if diff and saved.get("source") != now["source"]:
        diff.insert(0, f"data: checkpoint {saved.get('source')!r}, now {now['source']!r}")
    return diff
