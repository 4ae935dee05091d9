"""The command line: help a newcomer can read, and train -> sample -> export -> evaluate end to end."""
import json

import numpy as np
import pytest
import torch

from diffedu.__main__ import build_parser, main


@pytest.fixture(autouse=True)
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_help_explains_with_examples(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for text in ("python -m diffedu train --data digits", "--resume", "python -m diffedu sample", "evaluate"):
        assert text in out
    for command in ("train", "sample", "evaluate", "export", "train-classifier"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "usage: python -m diffedu " + command in capsys.readouterr().out
    sub = build_parser()._subparsers._group_actions[0].choices
    assert "swissroll" in sub["train"].format_help() and "edm-heun" in sub["sample"].format_help()


def test_train_sample_export_evaluate_on_2d_data(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", "moons", "--steps", "40", "--out", str(run), "--hidden", "32", "--depth", "1",
                 "--n-points", "512", "--threads", "1", "--no-progress", "--sample-every", "0"]) == 0
    assert "model mlp" in capsys.readouterr().out and (run / "ckpt.pt").exists()
    assert main(["train", "--data", "moons", "--steps", "50", "--out", str(run), "--hidden", "32", "--depth", "1",
                 "--n-points", "512", "--threads", "1", "--no-progress", "--resume"]) == 0
    assert "at step 40" in capsys.readouterr().out
    for sampler in ("ddpm", "ddim", "edm-heun", "edm-euler"):
        out = tmp_path / f"{sampler}.png"
        assert main(["sample", "--ckpt", str(run / "ckpt.pt"), "--sampler", sampler, "--steps", "5", "--n", "32",
                     "--out", str(out)]) == 0
        assert out.stat().st_size > 1000
    nfe = [line.split("NFE ")[1].split(",")[0] for line in capsys.readouterr().out.splitlines()]
    assert nfe == ["1000", "5", "9", "5"]
    assert main(["sample", "--ckpt", str(run / "ckpt.pt"), "--steps", "5", "--n", "7", "--out", str(tmp_path / "x.pt")]) == 0
    assert torch.load(tmp_path / "x.pt").shape == (7, 2)
    assert main(["export", "--ckpt", str(run / "ckpt.pt"), "--out", str(tmp_path / "m.safetensors"), "--dtype", "float16"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--ckpt", str(tmp_path / "m.safetensors"), "--steps", "2,8", "--n", "200", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["nfe"] for r in rows] == [2, 8] and all(r["sw"] > 0 and r["seconds"] > 0 for r in rows)


def test_train_help_shows_the_config_defaults_and_bad_values_fail_before_training(tmp_path, capsys):
    from diffedu.training import TrainConfig

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    for flag, default in (("--batch-size", TrainConfig.batch_size), ("--warmup", TrainConfig.warmup),
                          ("--grad-clip", TrainConfig.grad_clip), ("--ema", TrainConfig.ema_decay),
                          ("--log-every", TrainConfig.log_every), ("--lr", 5e-4), ("--ckpt-every", 250)):
        assert f"{flag} " in help_text and f"(default {default})" in help_text, flag
    run = tmp_path / "run"
    for flag, value, field in (("--batch-size", "0", "batch_size"), ("--ema", "1.5", "ema_decay"),
                               ("--lr", "-1", "lr"), ("--warmup", "-5", "warmup")):
        assert main(["train", "--data", "moons", "--steps", "3", "--out", str(run), flag, value, "--no-progress"]) == 2
        assert capsys.readouterr().err.startswith(f"error: {field} must be in")
    assert not run.exists()


def test_train_on_an_image_folder_and_errors(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--size", "8", "--steps", "3", "--batch-size", "2", "--out", str(run),
                 "--base-channels", "8", "--threads", "1", "--no-progress"]) == 0
    assert "(4, 3, 8, 8)" in capsys.readouterr().out and (run / "samples_000003.png").exists()
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--steps", "3", "--out", str(run)]) == 2
    assert "nowhere" in capsys.readouterr().err
    (run / "ckpt.pt").write_bytes(b"garbage")
    assert main(["sample", "--ckpt", str(run / "ckpt.pt"), "--out", str(tmp_path / "g.png")]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sample", "--ckpt", "x", "--sampler", "plms", "--out", "y.png"])
