"""Training: loss goes down, checkpoints round-trip and fail clearly, a killed run resumes bit for bit."""
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import diffedu
from diffedu.checkpoint import REQUIRED, export_model, load_checkpoint, load_model, save_checkpoint
from diffedu.data import toy_2d
from diffedu.training import BatchSampler, TrainConfig, ema_update, lr_at, train

from standins import same_state, tiny_mlp

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py


def run(tmp, steps, **kw):
    kw = dict(dict(batch_size=64, lr=2e-3, ckpt_every=10, progress=False, seed=0), **kw)
    return train(tiny_mlp(), toy_2d("mixture", 512), tmp, steps=steps, **kw)


def test_eps_training_lowers_the_loss_and_writes_outputs(tmp_path):
    trained = run(tmp_path, 150)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 150 and sum(r["loss"] for r in log[-3:]) / 3 < 0.8 * log[0]["loss"]
    assert (tmp_path / "ckpt.pt").exists() and (tmp_path / "samples_000150.png").exists()
    assert trained.objective == "eps" and trained.sched.T == 1000 and trained.shape == [2]
    assert trained.sample(8, "ddim", steps=5).shape == (8, 2)


def test_edm_training_step(tmp_path):
    """EDM's objective through diffedu.precond.Denoiser / edm_loss, then sampling with EDM's Heun."""
    trained = run(tmp_path, 30, objective="edm", sigma_data=1.0)
    ck = load_checkpoint(tmp_path / "ckpt.pt")
    assert ck["objective"] == "edm" and ck["betas"] is None and ck["sigma_data"] == 1.0
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    x = trained.sample(16, "edm-heun", steps=6)
    assert x.shape == (16, 2) and torch.isfinite(x).all()
    assert trained.sample(4, "ddim", steps=5).shape == (4, 2)   # the EDM net seen as an eps-model


def test_resume_in_process_is_bitwise_identical(tmp_path):
    run(tmp_path / "whole", 40)
    run(tmp_path / "split", 25)
    run(tmp_path / "split", 40, resume=True)
    a, b = (load_checkpoint(tmp_path / d / "ckpt.pt") for d in ("whole", "split"))
    assert a["step"] == b["step"] == 40
    for key in ("model", "ema", "optimizer", "rng"):
        assert same_state(a[key], b[key]), key


def _cli(out, *extra):
    return [sys.executable, "-m", "diffedu", "train", "--data", "mixture", "--steps", "600", "--out", str(out),
            "--hidden", "32", "--depth", "1", "--batch-size", "64", "--n-points", "512", "--ckpt-every", "25",
            "--sample-every", "0", "--threads", "1", "--no-progress", *extra]


def _step_in_log(out):
    try:
        lines = (out / "log.jsonl").read_text().splitlines()
        return json.loads(lines[-1])["step"] if lines else 0
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def test_killed_run_resumes_from_its_last_checkpoint_bitwise(tmp_path):
    """SIGKILL a training process mid-run; `--resume` continues at the checkpoint's step and ends
    exactly where an uninterrupted run with the same seed ends (CPU, same thread count)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    proc = subprocess.Popen(_cli(killed), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while _step_in_log(killed) < 160 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    step_at_kill = load_checkpoint(killed / "ckpt.pt")["step"]
    assert 0 < step_at_kill < 600 and step_at_kill % 25 == 0

    resumed = subprocess.run(_cli(killed, "--resume"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"at step {step_at_kill}" in resumed.stdout
    log_steps = [json.loads(line)["step"] for line in (killed / "log.jsonl").read_text().splitlines()]
    assert log_steps == sorted(set(log_steps)) and log_steps[-1] == 600   # no duplicated or lost log lines

    subprocess.run(_cli(whole), cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    a, b = load_checkpoint(whole / "ckpt.pt"), load_checkpoint(killed / "ckpt.pt")
    assert a["step"] == b["step"] == 600
    for key in ("model", "ema", "optimizer", "rng"):
        assert same_state(a[key], b[key]), key


def test_checkpoint_round_trip_holds_everything(tmp_path):
    run(tmp_path, 20)
    ck = load_checkpoint(tmp_path / "ckpt.pt")
    assert ck["step"] == 20 and ck["model_config"] == tiny_mlp().config and ck["objective"] == "eps"
    assert torch.equal(ck["betas"], diffedu.linear_betas(1000))
    assert set(ck["rng"]) == {"batches", "noise", "torch"} and ck["optimizer"]["state"]
    assert ck["meta"]["shape"] == [2] and ck["meta"]["run_args"]["batch_size"] == 64
    t = load_model(tmp_path / "ckpt.pt")
    assert same_state(t.model.state_dict(), ck["ema"])
    assert not same_state(ck["ema"], ck["model"])


def test_export_is_small_and_samples_like_the_checkpoint(tmp_path):
    run(tmp_path, 20)
    for dtype in ("float32", "float16"):
        path = export_model(tmp_path / "ckpt.pt", tmp_path / f"m_{dtype}.safetensors", dtype)
        t = load_model(path)
        ref = load_model(tmp_path / "ckpt.pt")
        x, y = t.sample(16, steps=10), ref.sample(16, steps=10)
        assert torch.allclose(x, y, atol=0 if dtype == "float32" else 2e-2)
        assert t.meta["step"] == 20 and t.sched.T == 1000


def test_corrupt_truncated_or_mismatched_checkpoints_fail_clearly(tmp_path):
    run(tmp_path, 10)
    good = tmp_path / "ckpt.pt"
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.pt.*truncated or corrupt"):
        load_checkpoint(tmp_path / "trunc.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="junk.pt.*truncated or corrupt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt.*not a diffedu"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="missing.pt.*does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="ckpt.pt.*different model.*hidden: checkpoint 32, requested 64"):
        load_checkpoint(good, model_config=dict(tiny_mlp().config, hidden=64))
    with pytest.raises(ValueError, match="run's arguments changed.*batch_size"):
        run(tmp_path, 20, resume=True, batch_size=32)
    with pytest.raises(ValueError, match="different model"):
        train(diffedu.MLP(hidden=64), toy_2d("mixture", 512), tmp_path, steps=20, resume=True, progress=False,
              batch_size=64)
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="bad.safetensors"):
        load_model(tmp_path / "bad.safetensors")


def test_a_failed_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    run(tmp_path, 10)
    before = (tmp_path / "ckpt.pt").read_bytes()
    model = tiny_mlp()

    def boom(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "ckpt.pt", model=model, ema=model, step=11, objective="eps",
                        optimizer=torch.optim.AdamW(model.parameters()))
    assert (tmp_path / "ckpt.pt").read_bytes() == before
    load_checkpoint(tmp_path / "ckpt.pt")


def test_batch_sampler_visits_every_point_once_per_epoch():
    s = BatchSampler(10, 3, seed=0)
    first = torch.cat([s.next() for _ in range(3)])
    assert len(set(first.tolist())) == 9
    state = s.state_dict()
    a = [s.next() for _ in range(4)]
    s.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(a, [s.next() for _ in range(4)]))


def test_ema_update_is_the_moving_average():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    wa, wb = a.weight.detach().clone(), b.weight.detach().clone()
    ema_update(a, b, decay=0.9)
    assert torch.allclose(a.weight, 0.9 * wa + 0.1 * wb)


@pytest.mark.parametrize("field, value, allowed", [
    ("steps", 0, ">= 1"), ("steps", 2.5, "an integer"), ("objective", "x0", "'eps', 'edm'"),
    ("batch_size", 0, ">= 1"), ("batch_size", True, "an integer"),
    ("lr", 0.0, "(0, inf)"), ("lr", math.inf, "(0, inf)"), ("lr", math.nan, "(0, inf)"), ("lr", "fast", "a number"),
    ("weight_decay", -0.1, "[0, inf)"), ("warmup", -1, ">= 0"),
    ("ema_decay", 1.5, "[0, 1]"), ("ema_decay", -0.1, "[0, 1]"), ("grad_clip", -1.0, "[0, inf)"),
    ("sigma_data", 0.0, "(0, inf)"), ("seed", -1, "0.."), ("ckpt_every", 0, ">= 1"),
    ("sample_every", -1, ">= 0"), ("log_every", 0, ">= 1"), ("device", "gpu", "'cuda', 'mps' or 'cpu'"),
    ("progress", "yes", "True, False"),
])
def test_config_refuses_bad_values_naming_the_field_range_and_value(field, value, allowed):
    with pytest.raises(ValueError, match=rf"^{field} must .*{re.escape(allowed)}.*got {re.escape(repr(value))}$"):
        TrainConfig(**dict(dict(steps=10), **{field: value}))


def test_config_defaults_and_the_resume_identity():
    c = TrainConfig(steps=10)
    assert (c.objective, c.batch_size, c.lr, c.warmup, c.ema_decay, c.grad_clip, c.sigma_data) == \
        ("eps", 128, 2e-4, 100, 0.999, 1.0, 0.5)
    assert (c.ckpt_every, c.sample_every, c.log_every, c.device, c.progress) == (500, 0, 10, None, True)
    # the keys and values that checkpoints store as meta["run_args"] (old ckpt.pt files still resume)
    assert TrainConfig(steps=10, batch_size=64, seed=3).run_args(512) == \
        {"objective": "eps", "batch_size": 64, "seed": 3, "n_data": 512, "sigma_data": None}
    assert TrainConfig(steps=10, objective="edm", sigma_data=1.0).run_args(5)["sigma_data"] == 1.0
    assert type(TrainConfig(steps=10, lr=1).lr) is float


def test_learning_rate_warm_up():
    c = TrainConfig(steps=10, lr=1.0, warmup=4)
    assert [lr_at(s, c) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lr_at(0, TrainConfig(steps=10, lr=1.0, warmup=0)) == 1.0


def test_a_config_and_keyword_overrides_are_the_same_run(tmp_path):
    data = toy_2d("mixture", 128)
    kw = dict(lr=2e-3, ckpt_every=5, progress=False)
    train(tiny_mlp(), data, tmp_path / "kw", steps=10, batch_size=32, **kw)
    config = TrainConfig(steps=10, batch_size=32, **kw)
    train(tiny_mlp(), data, tmp_path / "config", config)
    train(tiny_mlp(), data, tmp_path / "override", TrainConfig(steps=99, batch_size=8, **kw), steps=10, batch_size=32)
    a, b, c = (load_checkpoint(tmp_path / d / "ckpt.pt") for d in ("kw", "config", "override"))
    assert a["step"] == b["step"] == c["step"] == 10 and c["meta"]["run_args"]["batch_size"] == 32
    for key in ("model", "ema", "optimizer", "rng"):
        assert same_state(a[key], b[key]) and same_state(a[key], c[key]), key
    assert config.steps == 10 and set(a) == set(REQUIRED)   # no scaler on the CPU: the format's keys, no more


def test_unknown_keywords_and_bad_values_fail_before_anything_is_written(tmp_path):
    data = toy_2d("mixture", 64)
    with pytest.raises(ValueError, match=r"unknown keyword argument\(s\) ema, nrow;.*batch_size.*ema_decay"):
        train(tiny_mlp(), data, tmp_path / "a", steps=5, ema=0.9, nrow=3)
    with pytest.raises(ValueError, match=r"unknown keyword.*epochs"):
        train(tiny_mlp(), data, tmp_path / "a", TrainConfig(steps=5), epochs=2)
    with pytest.raises(ValueError, match=r"^batch_size must be in >= 1, got 0"):
        train(tiny_mlp(), data, tmp_path / "a", steps=5, batch_size=0)
    with pytest.raises(ValueError, match=r"^ema_decay must be in \[0, 1\]"):
        train(tiny_mlp(), data, tmp_path / "a", TrainConfig(steps=5), ema_decay=2.0)
    with pytest.raises(ValueError, match="config must be a TrainConfig or None, got dict"):
        train(tiny_mlp(), data, tmp_path / "a", {"steps": 5})
    assert not (tmp_path / "a").exists()


def test_resume_refuses_a_different_schedule(tmp_path):
    run(tmp_path, 10)
    with pytest.raises(ValueError, match="ckpt.pt was trained with a different schedule"):
        run(tmp_path, 20, resume=True, betas=diffedu.cosine_betas(1000))
