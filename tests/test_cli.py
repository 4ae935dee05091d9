"""The command line: help a newcomer can read, and train -> sample -> export -> evaluate end to end;
every failure a user can fix is one line `error: ...` naming the option and the path, exit code 2."""
import argparse
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


# ---- nothing lost, nothing silent: every failure a user can fix is one line naming the option and the path

TINY = ["--hidden", "32", "--depth", "1", "--n-points", "512", "--threads", "1", "--no-progress", "--sample-every", "0"]


def train_args(out, *extra, data="moons", steps="20"):
    return ["train", "--data", data, "--steps", steps, "--out", str(out), *TINY, *extra]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny trained 2-D checkpoint, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("cli") / "run"
    n = torch.get_num_threads()
    assert main(train_args(out)) == 0
    torch.set_num_threads(n)
    return out / "ckpt.pt"


def test_version_and_every_option_has_help_with_its_default(capsys):
    import diffedu

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"diffedu {diffedu.__version__}"
    parser = build_parser()
    subs = parser._subparsers._group_actions[0].choices
    for name, sub in [("", parser)] + list(subs.items()):
        for action in sub._actions:
            if action.dest in ("help", "command") or action.default == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.default not in (None, False):
                assert "default" in action.help, f"{name} {action.option_strings}: help does not say its default"
        text = sub.format_help()
        assert "%(default)" not in text


def test_train_refuses_a_folder_holding_a_run_naming_both_flags(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(run)) == 0
    before = (run / "log.jsonl").read_bytes(), (run / "ckpt.pt").read_bytes()
    capsys.readouterr()
    assert main(train_args(run)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out folder") and str(run) in err and "--resume" in err and "--overwrite" in err
    assert ((run / "log.jsonl").read_bytes(), (run / "ckpt.pt").read_bytes()) == before
    assert main(train_args(run, "--resume", "--overwrite")) == 2
    assert "not both" in capsys.readouterr().err
    assert main(train_args(run, "--overwrite", steps="10")) == 0
    assert "overwrite: removed the old run" in capsys.readouterr().err


def test_a_second_training_into_a_locked_folder_exits_2_naming_the_pid(tmp_path, capsys):
    import os

    from diffedu.rundir import RunLock

    (tmp_path / "run").mkdir()
    with RunLock(tmp_path / "run"):
        assert main(train_args(tmp_path / "run")) == 2
    assert f"in use by another training run (PID {os.getpid()}" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, field", [
    ("--lr", "inf", "lr"), ("--batch-size", "0", "batch_size"), ("--ema", "nan", "ema_decay"),
    ("--ema", "2", "ema_decay"), ("--ema", "-1", "ema_decay"), ("--device", "nope", "device"),
])
def test_bad_training_values_are_one_line_naming_the_option(tmp_path, capsys, flag, value, field):
    assert main(train_args(tmp_path / "run", flag, value)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field} must be") and err.rstrip().endswith(f"(option {flag})")
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_device_lists_the_available_ones(tmp_path, capsys, ckpt):
    assert main(train_args(tmp_path / "run", "--device", "cuda")) == 2
    assert "error: --device: device 'cuda' is not available on this machine; available here: cpu" in \
        capsys.readouterr().err
    assert main(["sample", "--ckpt", str(ckpt), "--device", "cuda:1", "--out", str(tmp_path / "g.png")]) == 2
    assert "device 'cuda:1' is not available" in capsys.readouterr().err


def test_threads_must_be_positive(capsys):
    for value in ("-1", "0", "two"):
        with pytest.raises(SystemExit) as e:
            main(["train", "--data", "moons", "--steps", "3", "--out", "x", "--threads", value])
        assert e.value.code == 2 and "argument --threads: must be an integer >= 1" in capsys.readouterr().err


def test_resume_on_other_data_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_args(run, steps="10")) == 0
    capsys.readouterr()
    assert main(train_args(run, "--resume", data="swissroll")) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "the data changed (data: checkpoint 'moons', now 'swissroll'" in err


def test_outputs_never_replace_the_input_nor_an_existing_file(tmp_path, capsys, ckpt):
    import os

    before = ckpt.read_bytes()
    link, hard = tmp_path / "link.pt", tmp_path / "hard.pt"
    link.symlink_to(ckpt)
    os.link(ckpt, hard)
    for out in (ckpt, link, tmp_path / ".." / tmp_path.name / "link.pt"):
        assert main(["sample", "--ckpt", str(ckpt), "--steps", "2", "--n", "4", "--out", str(out), "--overwrite"]) == 2
        assert f"is the input --ckpt {str(ckpt)!r}" in capsys.readouterr().err
    assert main(["sample", "--ckpt", str(hard), "--steps", "2", "--n", "4", "--out", str(ckpt)]) == 2  # os.path.samefile
    assert "is the input --ckpt" in capsys.readouterr().err
    assert main(["export", "--ckpt", str(ckpt), "--out", str(ckpt)]) == 2
    assert "is the input --ckpt" in capsys.readouterr().err
    assert ckpt.read_bytes() == before
    grid = tmp_path / "g.png"
    assert main(["sample", "--ckpt", str(ckpt), "--steps", "2", "--n", "4", "--out", str(grid)]) == 0
    assert main(["sample", "--ckpt", str(ckpt), "--steps", "2", "--n", "4", "--out", str(grid)]) == 2
    assert f"--out {str(grid)!r} exists; pass --overwrite" in capsys.readouterr().err
    assert main(["sample", "--ckpt", str(ckpt), "--steps", "2", "--n", "4", "--out", str(grid), "--overwrite"]) == 0
    assert main(["export", "--ckpt", str(ckpt), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_os_errors_name_the_option_and_the_path(tmp_path, capsys, ckpt, monkeypatch):
    import errno

    import diffedu.__main__ as cli
    import diffedu.checkpoint

    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(train_args(a_file / "run")) == 2            # --out under a file
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {str(a_file / 'run')!r}: ") and "Traceback" not in err
    assert main(train_args(a_file)) == 2                    # --out is a file
    assert f"{str(a_file)!r} is a file, not a folder" in capsys.readouterr().err

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    run = tmp_path / "run"
    monkeypatch.setattr(diffedu.checkpoint.torch, "save", full)
    assert main(train_args(run)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {str(run)!r}: ") and err.rstrip().endswith("No space left on device")
    assert len(err.strip().splitlines()) == 1
    assert not (run / ".lock").exists()
    monkeypatch.setattr(cli, "save_grid", lambda *a, **k: (_ for _ in ()).throw(
        PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ro" / "g.png"))))
    assert main(["sample", "--ckpt", str(ckpt), "--steps", "2", "--n", "4", "--out", str(tmp_path / "ro" / "g.png")]) == 2
    assert f"error: --out {str(tmp_path / 'ro' / 'g.png')!r}: Permission denied" in capsys.readouterr().err


def test_safetensors_device_and_asset_errors_are_messages_and_bugs_keep_their_traceback(tmp_path, capsys, ckpt,
                                                                                     monkeypatch):
    from pathlib import Path

    from safetensors import SafetensorError

    import diffedu.__main__ as cli
    import diffedu.assets
    import diffedu.checkpoint

    def broken(*args, **kw):
        raise SafetensorError("Error while serializing: IoError(Os { code: 28 })")

    monkeypatch.setattr(diffedu.checkpoint, "save_file", broken)
    out = tmp_path / "m.safetensors"
    assert main(["export", "--ckpt", str(ckpt), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --out {str(out)!r}: Error while serializing")

    def cuda_oom(*args, **kw):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB\nSee the documentation")

    monkeypatch.setattr(cli, "generate", cuda_oom)
    assert main(["sample", "--ckpt", str(ckpt), "--out", str(tmp_path / "g.png")]) == 2
    assert capsys.readouterr().err == "error: CUDA out of memory. Tried to allocate 2.00 GiB See the documentation\n"

    monkeypatch.setattr(cli, "generate", lambda *a, **k: {}["a bug"])
    with pytest.raises(KeyError):
        main(["sample", "--ckpt", str(ckpt), "--out", str(tmp_path / "g.png")])

    bad = tmp_path / "assets"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    monkeypatch.setattr(diffedu.assets, "ASSETS", bad)
    shipped = Path(diffedu.assets.__file__).parent / "shipped" / "digits_unet.safetensors"
    assert main(["evaluate", "--ckpt", str(shipped), "--steps", "1", "--n", "4"]) == 2
    assert f"error: asset manifest {str(bad / 'manifest.json')!r} is not valid JSON" in capsys.readouterr().err


def test_every_command_reports_a_missing_input_in_one_line(tmp_path, capsys):
    missing = str(tmp_path / "nothing.pt")
    for argv in (["sample", "--ckpt", missing, "--out", str(tmp_path / "g.png")],
                 ["evaluate", "--ckpt", missing, "--steps", "1", "--n", "2"],
                 ["export", "--ckpt", missing, "--out", str(tmp_path / "m.safetensors")],
                 ["train", "--data", str(tmp_path / "no-folder"), "--steps", "1", "--out", str(tmp_path / "r")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
        assert ("nothing.pt" if argv[0] != "train" else "no-folder") in err


def test_sampler_settings_the_registry_refuses(capsys, ckpt, tmp_path):
    assert main(["sample", "--ckpt", str(ckpt), "--steps", "5000", "--out", str(tmp_path / "g.png")]) == 2
    assert capsys.readouterr().err.strip() == "error: steps must be in 1..1000, got 5000"
    assert main(["sample", "--ckpt", str(ckpt), "--sampler", "ddpm", "--eta", "0.5", "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sampler 'ddpm' takes") and "got eta" in err
    assert main(["evaluate", "--ckpt", str(ckpt), "--sampler", "edm-heun", "--eta", "1", "--steps", "2", "--n", "2"]) == 2
    assert "sampler 'edm-heun' takes" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()
