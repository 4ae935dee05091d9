"""The DCGAN baseline: shapes and configs, seeded sampling that leaves the global RNG alone, a run's
files, a killed run resumed bit for bit, the refusals (other data, a folder holding a run, a
diverging loss, damaged files), the export round trip, and a few steps on real digits that learn."""
import json
import math

import pytest
import torch

from diffedu import gan
from diffedu.__main__ import main
from diffedu.checkpoint import model_for_weights
from diffedu.data import mnist
from diffedu.gan import (GANState, discriminator_loss, export_generator, load_gan_checkpoint, load_generator,
                         train_gan)
from diffedu.models import build_model
from diffedu.models.gan import Discriminator, Generator, dcgan_init_
from diffedu.training import TrainingDiverged
from standins import same_state

pytestmark = pytest.mark.usefixtures("one_thread")   # tests/conftest.py

TINY = dict(width=8, z_dim=16, batch_size=32, ckpt_every=3, sample_every=3, progress=False)


@pytest.fixture(scope="module")
def digits():
    return mnist("train")[0]


def run(out, steps, data, **kw):
    return train_gan(data[:256], out, steps, **dict(TINY, **kw))


def gen(seed):
    return torch.Generator().manual_seed(seed)


# 1. the networks

def test_shapes_ranges_and_clear_errors():
    G, D = Generator(z_dim=16, width=8), Discriminator(width=8)
    x = G(torch.randn(5, 16, generator=gen(0)))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert D(x).shape == (5,)
    with pytest.raises(ValueError, match=r"Generator expects z of shape \(B, 16\), got \(5, 15\)"):
        G(torch.zeros(5, 15))
    with pytest.raises(ValueError, match=r"Discriminator expects x of shape \(B, 1, 28, 28\), got \(5, 1, 32, 32\)"):
        D(torch.zeros(5, 1, 32, 32))
    with pytest.raises(ValueError, match=r"^width must be in 1\.\.4096, got 0$"):
        Generator(width=0)
    with pytest.raises(ValueError, match=r"^z_dim must be an integer, got 2\.5$"):
        Generator(z_dim=2.5)
    with pytest.raises(ValueError, match=r"^n must be in >= 1, got 0$"):
        G.sample(0)


@pytest.mark.parametrize("net", [Generator(z_dim=16, width=8), Discriminator(width=8)])
def test_configs_rebuild_through_build_model(net):
    config = json.loads(json.dumps(net.config))          # as a file's metadata stores it
    twin = build_model(config)
    assert type(twin) is type(net) and twin.config == net.config
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    with pytest.raises(ValueError, match="width must be in"):
        build_model(dict(config, width=-1))


def test_sampling_is_seeded_in_eval_mode_and_leaves_the_global_rng_alone():
    G = dcgan_init_(Generator(z_dim=16, width=8), gen(0))
    G(torch.randn(32, 16, generator=gen(9)))              # a training-mode pass: running statistics move
    stats = G.net[1].running_mean.clone()
    before = torch.get_rng_state()
    a, b, c = G.sample(6, gen(1)), G.sample(6, gen(1)), G.sample(6, gen(2))
    assert torch.equal(a, b) and not torch.equal(a, c) and torch.equal(G.sample(3), G.sample(3))
    assert torch.equal(torch.get_rng_state(), before)     # z came from the generator passed in only
    assert G.training and torch.equal(G.net[1].running_mean, stats)   # mode restored, statistics untouched
    z = torch.randn(6, 16, generator=gen(1))
    with torch.no_grad():
        assert torch.allclose(a, G.eval()(z)) and torch.allclose(a[:2], G(z[:2]), atol=1e-6)  # no batch coupling
    assert not a.requires_grad


def test_dcgan_init_is_seeded_complete_and_the_papers_scale():
    with torch.device("meta"):
        empty = Generator(z_dim=16, width=8)
    G = dcgan_init_(empty.to_empty(device="cpu"), gen(3))      # uninitialised memory, fully overwritten
    twin = dcgan_init_(Generator(z_dim=16, width=8), gen(3))
    assert same_state(G.state_dict(), twin.state_dict())
    assert abs(G.project.weight.std().item() - 0.02) < 0.002 and G.net[1].num_batches_tracked == 0
    assert torch.equal(G.net[1].running_var, torch.ones(16)) and not G.net[-2].bias.any()


# 2. a run and its files

def test_a_short_run_writes_checkpoint_log_and_grids(tmp_path, digits):
    G = run(tmp_path, 6, digits)
    assert not G.training and isinstance(G, Generator)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "log.jsonl", "samples_000003.png",
                                                          "samples_000006.png"]
    (line,) = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]   # every 50, and the end
    assert line.keys() == {"step", "d_loss", "g_loss", "seconds"} and line["step"] == 6
    assert math.isfinite(line["d_loss"]) and math.isfinite(line["g_loss"])
    ck = torch.load(tmp_path / "ckpt.pt", weights_only=True)   # no pickled code: tensors, dicts, numbers, strings
    assert ck["step"] == 6 and ck["generator_config"] == G.config and ck["discriminator_config"]["width"] == 8
    assert ck["rng"]["noise"].dtype == torch.uint8 and ck["data_fingerprint"]["n"] == 256
    assert ck["opt_g"]["param_groups"][0]["betas"] == (0.5, 0.999)
    assert same_state(ck["generator"], G.state_dict())


def test_a_killed_run_resumed_is_bit_for_bit_the_uninterrupted_run(tmp_path, digits, monkeypatch):
    run(tmp_path / "whole", 6, digits)
    real, calls = gan.generator_loss, []

    def killed(*args):
        calls.append(1)
        if len(calls) == 5:                                   # step 5: after the checkpoint of step 3
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(gan, "generator_loss", killed)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", 6, digits)
    monkeypatch.setattr(gan, "generator_loss", real)
    assert load_gan_checkpoint(tmp_path / "cut" / "ckpt.pt")["step"] == 3
    run(tmp_path / "cut", 6, digits, resume=True)
    whole, cut = (load_gan_checkpoint(tmp_path / name / "ckpt.pt") for name in ("whole", "cut"))
    for key in ("step", "generator", "discriminator", "opt_g", "opt_d", "rng"):
        assert same_state(whole[key], cut[key]), key
    (a,), (b,) = ([json.loads(s) for s in (tmp_path / n / "log.jsonl").read_text().splitlines()] for n in ("whole", "cut"))
    assert (a["d_loss"], a["g_loss"]) == (b["d_loss"], b["g_loss"])
    run(tmp_path / "cut", 8, digits, resume=True)             # a finished run continues to a larger `steps`
    assert load_gan_checkpoint(tmp_path / "cut" / "ckpt.pt")["step"] == 8


def test_resume_refuses_other_data_and_other_arguments_naming_what_changed(tmp_path, digits):
    run(tmp_path, 3, digits)
    with pytest.raises(ValueError, match=r"cannot resume from .*ckpt.pt: the data changed \(values: SHA-256"):
        train_gan(digits[256:512], tmp_path, 6, resume=True, **TINY)
    with pytest.raises(ValueError, match=r"the data changed \(n: checkpoint 256, now 255"):
        train_gan(digits[:255], tmp_path, 6, resume=True, **TINY)
    with pytest.raises(ValueError, match=r"the run's arguments changed \(batch_size: checkpoint 32, now 16\)"):
        run(tmp_path, 6, digits, resume=True, batch_size=16)
    assert load_gan_checkpoint(tmp_path / "ckpt.pt")["step"] == 3


def test_a_folder_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path, digits, capsys):
    run(tmp_path, 3, digits)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match=r"already holds a run \(ckpt.pt, log.jsonl, 1 sample grid\(s\)\); "
                                         r"pass resume=True"):
        run(tmp_path, 3, digits)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(ValueError, match="not both"):
        run(tmp_path, 3, digits, resume=True, overwrite=True)
    run(tmp_path, 2, digits, overwrite=True, sample_every=0)
    assert "overwrite: removed the old run" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "log.jsonl", "samples_000002.png"]


def test_a_non_finite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, digits, monkeypatch):
    real, calls = gan.discriminator_loss, []

    def poisoned(*args):
        calls.append(1)
        return real(*args) * (float("nan") if len(calls) == 5 else 1.0)

    monkeypatch.setattr(gan, "discriminator_loss", poisoned)
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5: the discriminator loss is nan and the "
                                               r"generator loss is nan; stopped, the last good checkpoint "
                                               r".*ckpt.pt \(step 3\) is kept"):
        run(tmp_path, 6, digits)
    assert issubclass(TrainingDiverged, RuntimeError)
    ck = load_gan_checkpoint(tmp_path / "ckpt.pt")
    assert ck["step"] == 3 and all(torch.isfinite(v).all() for v in ck["generator"].values())


@pytest.mark.parametrize("kw, message", [
    (dict(steps=0), r"^steps must be in >= 1, got 0$"),
    (dict(batch_size=0), r"^batch_size must be in >= 1, got 0$"),
    (dict(lr=0), r"^lr must be in \(0, inf\), got 0$"),
    (dict(betas=(1.0, 0.9)), r"^betas\[0\] must be in \[0, 1\), got 1\.0$"),
    (dict(betas=0.5), r"^betas must be a pair"),
    (dict(width=0), r"^width must be in 1\.\.4096, got 0$"),
    (dict(resume="yes"), r"^resume must be one of True, False; got 'yes'$"),
    (dict(device="nope"), r"^device must be a torch device"),
    (dict(data=torch.zeros(4, 1, 8, 8)), r"^data must be a tensor of images \(N, 1, 28, 28\).*got \(4, 1, 8, 8\)$"),
    (dict(data=torch.full((4, 1, 28, 28), 2.0)), r"^data must be in \[-1, 1\].*got values in \[2, 2\]$"),
    (dict(data=torch.full((4, 1, 28, 28), float("nan"))), r"^data contains 3136 NaN"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, digits, kw, message):
    kw = dict(dict(data=digits[:64], steps=2), **kw)
    with pytest.raises(ValueError, match=message):
        train_gan(kw.pop("data"), tmp_path / "run", kw.pop("steps"), **dict(TINY, **kw))
    assert not (tmp_path / "run").exists()


# 3. shipping the generator

def test_export_and_load_give_the_same_samples_and_damage_is_refused(tmp_path, digits):
    G = run(tmp_path, 3, digits)
    path = export_generator(tmp_path / "ckpt.pt", tmp_path / "gan.safetensors")
    for loaded in (load_generator(path), load_generator(tmp_path / "ckpt.pt")):
        assert not loaded.training and loaded.config == G.config and loaded.meta["step"] == 3
        assert torch.equal(loaded.sample(16, gen(5)), G.sample(16, gen(5)))
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF                                           # a damaged byte in the weights
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"bad.safetensors' is corrupt: its tensor data have SHA-256"):
        load_generator(tmp_path / "bad.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_generator(tmp_path / "cut.safetensors")
    (tmp_path / "cut.pt").write_bytes((tmp_path / "ckpt.pt").read_bytes()[:1000])
    with pytest.raises(ValueError, match="cut.pt' is truncated or corrupt"):
        export_generator(tmp_path / "cut.pt", tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="does not exist"):
        load_generator(tmp_path / "missing.safetensors")


# 4. it learns

def test_a_hundred_steps_on_real_digits_teach_both_networks(tmp_path, digits):
    """D starts at chance (loss 2 ln 2) and learns to tell held-out real digits from G's; G's mean image
    moves towards the digits' (black background).  Six seeds gave D losses 0.11-0.24 and mean-image
    ratios 0.41-0.74: the bounds leave wide margins for other torch builds."""
    train, held = digits[:256], digits[3000:3256]
    start = GANState.start(256, 64, 2e-4, (0.5, 0.999), 64, 8, 0, "cpu")
    with torch.no_grad():
        fake0 = start.G.sample(256, gen(123))
        assert abs(discriminator_loss(start.D.eval()(held), start.D(fake0)).item() - 2 * math.log(2)) < 0.05
    G = train_gan(train, tmp_path, 100, width=8, batch_size=64, sample_every=0, progress=False)
    ck = load_gan_checkpoint(tmp_path / "ckpt.pt")
    D = model_for_weights(tmp_path / "ckpt.pt", ck["discriminator_config"], ck["discriminator"])
    fake = G.sample(256, gen(123))
    with torch.no_grad():
        assert discriminator_loss(D(held), D(fake)).item() < 0.7
    target = train.mean(0)
    assert (fake.mean(0) - target).pow(2).mean() < 0.85 * (fake0.mean(0) - target).pow(2).mean()
    assert [json.loads(s)["step"] for s in (tmp_path / "log.jsonl").read_text().splitlines()] == [50, 100]


# 5. the command line

def test_train_gan_and_export_gan_commands(tmp_path, capsys):
    out, model = tmp_path / "run", tmp_path / "gan.safetensors"
    args = ["train-gan", "--data", "mnist", "--steps", "2", "--batch-size", "8", "--out", str(out),
            "--ckpt-every", "1", "--sample-every", "0", "--threads", "1", "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    assert load_gan_checkpoint(out / "ckpt.pt")["step"] == 2 and (out / "samples_000002.png").exists()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "already holds a run" in err and err.count("\n") == 1
    assert main(args[:6] + ["0"] + args[7:] + ["--resume"]) == 2
    assert "batch_size must be in >= 1, got 0 (option --batch-size)" in capsys.readouterr().err
    assert main(["export-gan", "--ckpt", str(out / "ckpt.pt"), "--out", str(model)]) == 0
    assert main(["export-gan", "--ckpt", str(out / "ckpt.pt"), "--out", str(model)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export-gan", "--ckpt", str(out / "ckpt.pt"), "--out", str(model), "--overwrite"]) == 0
    assert load_generator(model).config == {"kind": "gan_generator", "z_dim": 64, "width": 64}
