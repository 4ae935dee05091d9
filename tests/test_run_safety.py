"""Nothing lost, nothing silent: a run folder holds one run, written by one process, and every way a
run can be cut short (killed writes, a diverging loss, other data on resume) is caught and named."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from diffedu import training
from diffedu.checkpoint import load_checkpoint
from diffedu.data import toy_2d
from diffedu.rundir import LOCK_NAME, RunFolderBusy, RunLock, data_fingerprint, fingerprint_diff, is_complete_png
from diffedu.training import TrainingDiverged, train

from standins import tiny_mlp

ROOT = Path(__file__).resolve().parents[1]
DEAD_PID = 2**30   # above Linux's pid_max (2**22): no process has it


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def run(out, steps, data=None, **kw):
    kw = dict(dict(batch_size=64, lr=2e-3, ckpt_every=10, progress=False, seed=0), **kw)
    return train(tiny_mlp(), toy_2d("mixture", 512) if data is None else data, out, steps=steps, **kw)


def log_steps(out):
    return [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]


# 1. a folder that holds a run is continued or replaced only when asked

def test_a_folder_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path, capsys):
    run(tmp_path, 10)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=r"already holds a run \(ckpt.pt, log.jsonl, 1 sample grid\(s\)\); "
                                         r"pass resume=True \(--resume\).*overwrite=True \(--overwrite\)"):
        run(tmp_path, 10)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before   # nothing emptied, nothing replaced
    with pytest.raises(ValueError, match="resume=True.*overwrite=True.*not both"):
        run(tmp_path, 10, resume=True, overwrite=True)
    (tmp_path / "ckpt.pt").unlink()
    with pytest.raises(ValueError, match="already holds a run .log.jsonl"):   # a log alone is a run too
        run(tmp_path, 10)


def test_overwrite_says_so_and_starts_afresh(tmp_path, capsys):
    run(tmp_path, 20)
    capsys.readouterr()
    run(tmp_path, 10, overwrite=True)
    assert "overwrite: removed the old run" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 10 and log_steps(tmp_path) == [10]
    assert sorted(p.name for p in tmp_path.glob("samples_*.png")) == ["samples_000010.png"]
    run(tmp_path / "fresh", 5, overwrite=True)   # nothing to replace: a plain start
    assert load_checkpoint(tmp_path / "fresh" / "ckpt.pt")["step"] == 5


# 2. one run per folder: a lock with the holder's PID, taken over when its holder died

def test_a_second_run_into_a_locked_folder_is_refused_naming_the_holder(tmp_path):
    with RunLock(tmp_path):
        holder = json.loads((tmp_path / LOCK_NAME).read_text())
        assert holder["pid"] == os.getpid() and holder["host"]
        with pytest.raises(RunFolderBusy, match=rf"in use by another training run \(PID {os.getpid()} on host"):
            run(tmp_path, 5)
    assert not (tmp_path / LOCK_NAME).exists() and not (tmp_path / "ckpt.pt").exists()
    run(tmp_path, 5)
    assert not (tmp_path / LOCK_NAME).exists()          # released at the end


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    run(tmp_path, 10)
    with pytest.raises(ValueError, match="run's arguments changed"):
        run(tmp_path, 20, resume=True, batch_size=32)
    assert not (tmp_path / LOCK_NAME).exists()
    run(tmp_path, 20, resume=True)


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_notice(tmp_path, capsys):
    """A child takes the lock and is SIGKILLed: while it lives, train refuses naming its PID; after, it takes over."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    code = ("import sys, time; from diffedu.rundir import RunLock; RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(120)")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderBusy, match=rf"PID {child.pid} on host"):
            run(tmp_path, 5)
    finally:
        child.kill()
        child.wait()
    capsys.readouterr()
    run(tmp_path, 5)
    assert f"took over the lock {tmp_path / LOCK_NAME} left by PID {child.pid}" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 5


def test_two_trainings_into_one_folder_at_once_the_second_exits_2_naming_the_first(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "diffedu", "train", "--data", "mixture", "--steps", "100000", "--out", str(out),
            "--hidden", "32", "--depth", "1", "--n-points", "512", "--threads", "1", "--no-progress"]
    first = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not (out / "log.jsonl").exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended early"
        second = subprocess.run(argv + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and f"in use by another training run (PID {first.pid} on host" in second.stderr
        assert second.stderr.startswith("error: ") and "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()


# 3. temporaries of killed writes are removed on the next start

def test_stale_temporaries_are_removed_on_start(tmp_path, capsys):
    run(tmp_path, 10)
    stale = [tmp_path / f".ckpt.pt.tmp-{DEAD_PID}", tmp_path / f".log.jsonl.tmp-{DEAD_PID}"]
    live = tmp_path / f".ckpt.pt.tmp-{os.getppid()}"   # the parent of this test process: running
    for p in stale + [live]:
        p.write_bytes(b"half a write")
    capsys.readouterr()
    run(tmp_path, 20, resume=True)
    err = capsys.readouterr().err
    assert not any(p.exists() for p in stale) and all(p.name in err for p in stale)
    assert live.exists()   # a live writer's temporary is left alone


# 4. a diverging run stops at its step and keeps the last good checkpoint

def test_a_non_finite_loss_stops_the_run_naming_the_step_and_keeps_the_checkpoint(tmp_path, monkeypatch, capsys):
    calls = []
    real = training.l_simple

    def poisoned(*args, **kw):
        calls.append(1)
        loss = real(*args, **kw)
        return loss * float("nan") if len(calls) == 15 else loss

    monkeypatch.setattr(training, "l_simple", poisoned)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 15: the loss is nan; stopped, the last good "
                                               r"checkpoint .*ckpt.pt \(step 10\) is kept.*lr"):
        run(tmp_path, 30, log_every=1)
    ck = load_checkpoint(tmp_path / "ckpt.pt")
    assert ck["step"] == 10 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert log_steps(tmp_path)[-1] == 14 and not (tmp_path / LOCK_NAME).exists()
    monkeypatch.setattr(training, "l_simple", real)
    capsys.readouterr()
    run(tmp_path, 30, resume=True, log_every=1)   # the run continues from the good checkpoint
    assert "dropped 4 line(s) of" in capsys.readouterr().err and log_steps(tmp_path) == list(range(1, 31))


def test_non_finite_weights_are_never_written_over_the_checkpoint(tmp_path, monkeypatch):
    real, calls = training.ema_update, []

    def poisoned(ema, model, decay):
        real(ema, model, decay)
        calls.append(1)
        if len(calls) >= 12:   # the loss (of the model, not the EMA) stays finite
            next(ema.parameters()).data.fill_(float("nan"))

    monkeypatch.setattr(training, "ema_update", poisoned)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 20: the EMA weights \(1 tensors, e.g. .*\) hold "
                                               r"NaN or inf.*\(step 10\) is kept"):
        run(tmp_path, 30)
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 10


def test_a_real_divergence_is_caught(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"diverged at step \d+: "):
        run(tmp_path, 50, lr=1e30, warmup=0, grad_clip=0.0)


@pytest.mark.parametrize("kw, message", [
    (dict(lr=float("inf")), r"^lr must be in \(0, inf\), got inf$"),
    (dict(batch_size=0), r"^batch_size must be in >= 1, got 0$"),
    (dict(ema_decay=float("nan")), r"^ema_decay must be in \[0, 1\], got nan$"),
    (dict(ema_decay=2), r"^ema_decay must be in \[0, 1\], got 2$"),
    (dict(ema_decay=-1), r"^ema_decay must be in \[0, 1\], got -1$"),
    (dict(resume="yes"), r"^resume must be one of True, False; got 'yes'$"),
    (dict(overwrite=1.5), r"^overwrite must be one of True, False; got 1.5$"),
    (dict(device="nope"), r"^device must be a torch device such as 'cuda', 'mps' or 'cpu'.*got 'nope'$"),
])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, kw, message):
    with pytest.raises(ValueError, match=message):
        run(tmp_path / "run", 5, **kw)
    assert not (tmp_path / "run").exists()


def test_data_with_nan_is_refused(tmp_path):
    data = toy_2d("mixture", 512)
    data[7, 1] = float("nan")
    with pytest.raises(ValueError, match="^data contains 1 NaN and 0 inf values"):
        run(tmp_path / "run", 5, data=data)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_refused_listing_the_available(tmp_path):
    with pytest.raises(ValueError, match=r"^device 'cuda' is not available on this machine; available here: cpu"):
        run(tmp_path / "run", 5, device="cuda")


# 5. the final grid of a run killed after its last checkpoint

def test_resuming_a_finished_run_writes_its_missing_final_grid(tmp_path, capsys):
    run(tmp_path, 20)
    grid, ckpt = tmp_path / "samples_000020.png", (tmp_path / "ckpt.pt").read_bytes()
    good = grid.read_bytes()
    for damage in (lambda: grid.unlink(), lambda: grid.write_bytes(good[: len(good) // 2])):
        damage()
        assert not is_complete_png(grid)
        capsys.readouterr()
        run(tmp_path, 20, resume=True)
        assert grid.read_bytes() == good and f"wrote {grid}" in capsys.readouterr().err
        assert (tmp_path / "ckpt.pt").read_bytes() == ckpt   # nothing retrained
    run(tmp_path, 20, resume=True)
    assert "wrote" not in capsys.readouterr().err


# 6. the log: a killed write's last line is dropped, a corrupt line elsewhere is named

def test_an_incomplete_last_log_line_is_dropped_with_a_notice(tmp_path, capsys):
    run(tmp_path, 10, log_every=1)
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"step": 11, "loss": 0.4')           # killed mid-write
    capsys.readouterr()
    run(tmp_path, 20, resume=True, log_every=1)
    err = capsys.readouterr().err
    assert f"dropped line 11 of {tmp_path / 'log.jsonl'}: it is incomplete" in err
    assert log_steps(tmp_path) == list(range(1, 21))


def test_a_corrupt_log_line_elsewhere_is_an_error_naming_the_file_and_line(tmp_path):
    run(tmp_path, 10, log_every=1)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    lines[2] = "garbage"
    (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"log.jsonl, line 3: not a log record \('garbage'\)"):
        run(tmp_path, 20, resume=True, log_every=1)
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 10 and not (tmp_path / LOCK_NAME).exists()


# 7. a resume trains on the data it started with

def test_resume_refuses_other_data_naming_what_changed(tmp_path):
    run(tmp_path, 10, meta={"data": "mixture"})
    ck = load_checkpoint(tmp_path / "ckpt.pt")
    assert ck["meta"]["data_fingerprint"] == data_fingerprint(toy_2d("mixture", 512), "mixture")
    with pytest.raises(ValueError, match=r"cannot resume from .*ckpt.pt: the data changed \(data: checkpoint "
                                         r"'mixture', now 'moons'; values: SHA-256 [0-9a-f]{12}\.\.\. in the "
                                         r"checkpoint, [0-9a-f]{12}\.\.\. now\)"):
        run(tmp_path, 20, data=toy_2d("moons", 512), resume=True, meta={"data": "moons"})
    with pytest.raises(ValueError, match=r"the data changed \(data: .*; n: checkpoint 512, now 256; values"):
        run(tmp_path, 20, data=toy_2d("moons", 256), resume=True, meta={"data": "moons"})
    shifted = toy_2d("mixture", 512)
    shifted[0, 0] += 1e-3
    with pytest.raises(ValueError, match=r"the data changed \(values: SHA-256"):
        run(tmp_path, 20, data=shifted, resume=True, meta={"data": "mixture"})
    run(tmp_path, 20, resume=True, meta={"data": "mixture"})


def test_same_data_from_another_source_and_old_checkpoints_still_resume(tmp_path, capsys):
    run(tmp_path, 10, meta={"data": "/old/place"})
    capsys.readouterr()
    run(tmp_path, 20, resume=True, meta={"data": "/new/place"})
    assert "source changed ('/old/place' -> '/new/place') but the data are the same" in capsys.readouterr().err
    ck = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    del ck["meta"]["data_fingerprint"]                  # as written before fingerprints
    torch.save(ck, tmp_path / "ckpt.pt")
    run(tmp_path, 30, data=toy_2d("mixture", 512), resume=True)
    assert "records no fingerprint of its data" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "ckpt.pt")["step"] == 30


def test_fingerprint_diff_names_each_change():
    a = data_fingerprint(torch.zeros(4, 2), "a")
    assert fingerprint_diff(a, data_fingerprint(torch.zeros(4, 2), "b")) == []
    diff = fingerprint_diff(a, data_fingerprint(torch.zeros(4, 3), "b"))
    assert diff[0] == "data: checkpoint 'a', now 'b'" and diff[1] == "shape: checkpoint [2], now [3]"


def test_resume_at_a_grid_step_rewrites_a_grid_lost_with_the_kill(tmp_path, capsys):
    """A run killed between writing ckpt.pt and the grid of the same step gets that grid on resume."""
    run(tmp_path, 20, sample_every=10)
    (tmp_path / "samples_000020.png").unlink()
    ck = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert ck["step"] == 20
    capsys.readouterr()
    run(tmp_path, 30, resume=True, sample_every=10)
    assert "samples_000020.png, the sample grid of step 20" in capsys.readouterr().err
    assert is_complete_png(tmp_path / "samples_000020.png") and is_complete_png(tmp_path / "samples_000030.png")
