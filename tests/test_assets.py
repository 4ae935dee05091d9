"""The shipped models: hash-checked, fast to load, and good: recognisable digits, points on the mixture."""
import json
import shutil
import time

import pytest
import torch

import diffedu
from diffedu import assets, metrics
from diffedu.data import mnist
from diffedu.gan import load_mnist_gan

NAMES = ("digits_unet.safetensors", "mixture_mlp.safetensors", "digits_classifier.safetensors",
         "mnist_classifier.safetensors", "mnist_gan.safetensors", "mnist_unet.safetensors")


def test_manifest_lists_every_shipped_file_with_its_hash():
    manifest = json.loads((assets.ASSETS / assets.MANIFEST).read_text())["files"]
    for name in NAMES:
        assert assets.sha256(assets.ASSETS / name) == manifest[name]["sha256"]
        assert manifest[name]["bytes"] < 5_000_000 and "python -m diffedu" in manifest[name]["command"]


@pytest.mark.parametrize("load", [assets.load_digits_unet, assets.load_mlp, assets.load_classifier,
                                  assets.load_mnist_classifier, load_mnist_gan, assets.load_mnist_unet])
def test_each_asset_loads_in_under_a_second(load):
    load()                                   # first call pays for imports (safetensors, scipy)
    t0 = time.perf_counter()
    load()
    assert time.perf_counter() - t0 < 1.0


def test_a_damaged_asset_is_refused_by_name(tmp_path):
    for name in NAMES + (assets.MANIFEST,):
        shutil.copy(assets.ASSETS / name, tmp_path / name)
    with open(tmp_path / "mixture_mlp.safetensors", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(ValueError, match="mixture_mlp.safetensors.*SHA-256"):
        assets.load_mlp(root=tmp_path)
    assets.load_classifier(root=tmp_path)    # the others still load
    (tmp_path / "digits_unet.safetensors").unlink()
    with pytest.raises(ValueError, match="digits_unet.safetensors.*missing"):
        assets.load_digits_unet(root=tmp_path)


def test_digits_unet_makes_recognisable_digits_with_ddim_50():
    torch.set_num_threads(1)
    unet = assets.load_digits_unet()
    assert unet.objective == "eps" and unet.sched.T == 1000 and unet.shape == [1, 8, 8]
    assert torch.allclose(unet.sched.beta[1:], diffedu.linear_betas(1000).to(unet.sched.dtype))
    x = unet.sample(200, "ddim", steps=50, generator=torch.Generator().manual_seed(0))
    assert x.shape == (200, 1, 8, 8)
    clf = assets.load_classifier()
    assert metrics.recognisable_rate(x, clf) > 0.8
    labels = clf(x.clamp(-1, 1)).argmax(1)
    assert len(labels.unique()) == 10        # every digit class appears


def test_mixture_mlp_samples_sit_on_the_eight_modes():
    mlp = assets.load_mlp()
    mix = diffedu.GaussianMixture.eight_gaussians()
    x = mlp.sample(2000, "ddim", steps=50, generator=torch.Generator().manual_seed(0)).double()
    floor, spread = metrics.sliced_wasserstein_floor(mix.sample, 2000, repeats=5)
    assert metrics.sliced_wasserstein(x, mix.sample(2000, torch.Generator().manual_seed(1))) < floor + 4 * spread
    counts = torch.bincount(mix.responsibilities(x, 0.0).argmax(1), minlength=8)
    assert counts.min() > 150                # no mode dropped (uniform would be 250 each)


@pytest.mark.parametrize("text,match", [
    ("{not json", "not valid JSON: .* line 1 column 2"),
    ('{"file": {}}', 'no "files" table'),
    ("[1, 2]", 'no "files" table'),
    ('{"files": {"mixture_mlp.safetensors": {"bytes": 3}}}', "'mixture_mlp.safetensors' has no valid \"sha256\""),
    ('{"files": {"mixture_mlp.safetensors": {"sha256": 12}}}', "has no valid \"sha256\".*got 12"),
    ('{"files": {"mixture_mlp.safetensors": "abc"}}', "has no valid \"sha256\""),
])
def test_a_malformed_manifest_is_a_value_error_naming_it(tmp_path, text, match):
    shutil.copy(assets.ASSETS / "mixture_mlp.safetensors", tmp_path)
    (tmp_path / assets.MANIFEST).write_text(text)
    with pytest.raises(ValueError, match=f"manifest.json.*{match}"):
        assets.load_mlp(root=tmp_path)


def test_a_manifest_that_does_not_list_the_file_says_so(tmp_path):
    (tmp_path / assets.MANIFEST).write_text('{"files": {}}')
    with pytest.raises(ValueError, match="'mixture_mlp.safetensors' is not listed in .*manifest.json"):
        assets.load_mlp(root=tmp_path)
    (tmp_path / assets.MANIFEST).write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="manifest.json.*not UTF-8"):
        assets.load_mlp(root=tmp_path)


def test_mnist_unet_is_the_asked_for_class_conditional_eps_model():
    unet = assets.load_mnist_unet()
    assert unet.objective == "eps" and unet.sched.T == 1000 and unet.shape == [1, 28, 28] and unet.num_classes == 10
    assert torch.allclose(unet.sched.beta[1:], diffedu.linear_betas(1000).to(unet.sched.dtype))
    assert unet.meta["data"] == "mnist" and unet.meta["run_args"]["label_dropout"] == 0.1


def test_mnist_unet_makes_recognisable_digits_of_the_asked_for_class_at_w_0():
    torch.set_num_threads(2)
    unet, clf = assets.load_mnist_unet(), assets.load_mnist_classifier()
    ask = torch.arange(100) % 10
    x = unet.sample(100, "ddim", steps=50, labels=ask, generator=torch.Generator().manual_seed(0))
    assert x.shape == (100, 1, 28, 28)
    assert metrics.recognisable_rate(x, clf) > 0.8 and metrics.class_accuracy(x, ask, clf) > 0.8   # measured 0.89, 0.90


def test_mnist_unet_unconditional_samples_cover_every_class():
    """The null class (labels=None): the unconditional model, trained on the 10% of labels dropped, and weaker
    than the conditional one (measured: 69% recognisable at DDIM 20 and 50, against 89% at w = 0 with labels)."""
    torch.set_num_threads(2)
    unet, clf = assets.load_mnist_unet(), assets.load_mnist_classifier()
    x = unet.sample(200, "ddim", steps=20, generator=torch.Generator().manual_seed(0))
    assert metrics.recognisable_rate(x, clf) > 0.55
    assert len(clf(x.clamp(-1, 1)).argmax(1).unique()) == 10                            # every class appears


def test_mnist_unet_guided_at_w_2_makes_the_asked_for_class():
    torch.set_num_threads(2)
    unet, clf = assets.load_mnist_unet(), assets.load_mnist_classifier()
    ask = torch.arange(10).repeat_interleave(10)
    x = unet.sample(100, "ddim", steps=20, labels=ask, guidance=2.0, generator=torch.Generator().manual_seed(0))
    assert metrics.class_accuracy(x, ask, clf) >= 0.9
    assert metrics.class_accuracy(x, (ask + 1) % 10, clf) < 0.05                        # not any class: the asked one


def test_mnist_classifier_reads_the_held_out_test_split():
    torch.set_num_threads(1)
    clf = assets.load_mnist_classifier()
    x, y = mnist("test")                     # never trained on
    with torch.no_grad():
        p = clf(x).softmax(1)
    assert (p.argmax(1) == y).double().mean() > 0.98 and metrics.recognisable_rate(x, clf) > 0.95
    assert metrics.recognisable_rate(torch.rand(500, 1, 28, 28) * 2 - 1, clf) < 0.05   # noise is no digit
    assert abs(json.loads((assets.ASSETS / assets.MANIFEST).read_text())["files"]["mnist_classifier.safetensors"]
               ["test_accuracy"] - float((p.argmax(1) == y).double().mean())) < 1e-3   # the manifest's number


def test_mnist_gan_makes_digits_in_one_network_call():
    torch.set_num_threads(1)
    gan, clf = load_mnist_gan(), assets.load_mnist_classifier()
    calls = []
    gan.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    x = gan.sample(1000, generator=torch.Generator().manual_seed(0))
    assert calls == [1000] and x.shape == (1000, 1, 28, 28) and float(x.abs().max()) <= 1
    assert metrics.recognisable_rate(x, clf) > 0.6
    assert len(clf(x).argmax(1).unique()) == 10              # every class appears
    floor = metrics.mnist_fid(mnist("train")[0][:1000], clf)
    assert floor < metrics.mnist_fid(x, clf) < 100            # worse than real digits, far from noise (~2000)
