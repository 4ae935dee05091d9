"""Classifier-free guidance and the class-conditional UNet: the guided prediction is the derived line
(1 + w) eps(x, c) - w eps(x); w = 0 is the conditional model; labels None is the null class; every
sampler of the registry takes labels and guidance; bad arguments are ValueErrors naming them."""
import math

import pytest
import torch

import diffedu as d
from diffedu import guidance as G
from diffedu.samplers import SAMPLERS
from diffedu.sampling import generate
from diffedu.symbolic import DERIVATIONS
from diffedu.symbolic import guidance as SG
from diffedu.trained import Trained
from standins import tiny_conditional_unet

SCHED = d.Schedule(d.linear_betas(100))   # T = 100: DDPM walks every step


def trained(objective="eps"):
    return Trained(tiny_conditional_unet(), objective, SCHED if objective == "eps" else None, shape=[1, 8, 8])


def test_the_derivation_holds_and_a_flipped_sign_fails():
    assert "classifier_free_guidance" in DERIVATIONS
    assert DERIVATIONS["classifier_free_guidance"]().verify() == []
    problems = SG._classifier_free_guidance(sign=-1).verify()
    assert any("cfg_eps" in p for p in problems) and any("(1 + w) grad log p(x | c) - w" in p for p in problems)


def test_cfg_eps_is_paired_with_the_derivation():
    from diffedu.symbolic import PAIRS, verify
    pair = next(p for p in PAIRS if p.numeric is G.cfg_eps)
    assert verify(pair) == []


def test_guided_is_the_line_through_the_two_predictions():
    net = tiny_conditional_unet()
    x, t, c = torch.randn(5, 1, 8, 8), torch.tensor([1, 10, 100, 500, 1000]), torch.tensor([0, 1, 2, 0, 1])
    with torch.no_grad():
        cond, uncond = net(x, t, c), net(x, t, torch.full((5,), net.null_class))
        assert not torch.allclose(cond, uncond)                        # the labels matter
        for w in (0.0, 0.5, 3.0):
            torch.testing.assert_close(G.Guided(net, c, w)(x, t), (1 + w) * cond - w * uncond, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(G.Guided(net, c, 0.0)(x, t), cond, rtol=0, atol=0)   # w = 0: conditional, exactly
        torch.testing.assert_close(G.Guided(net, None, 0.0)(x, t), uncond, rtol=0, atol=0)
        torch.testing.assert_close(net(x, t), uncond, rtol=0, atol=0)   # no labels: the null class


def test_guidance_doubles_the_batch_of_one_call():
    net, seen = tiny_conditional_unet(), []
    net.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    with torch.no_grad():
        G.Guided(net, torch.tensor([0, 1]), 2.0)(torch.randn(2, 1, 8, 8), torch.tensor([5, 5]))
        G.Guided(net, torch.tensor([0, 1]), 0.0)(torch.randn(2, 1, 8, 8), torch.tensor([5, 5]))
    assert seen == [4, 2]


@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_every_sampler_takes_labels_and_guidance(sampler):
    model = trained("eps")
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    kw = {"eta": 0.0} if sampler in ("ddim",) else {}
    plain = generate(model, 4, sampler, steps=4, generator=g(), labels=2, **kw).x
    again = generate(model, 4, sampler, steps=4, generator=g(), labels=torch.full((4,), 2), guidance=0.0, **kw).x
    guided = generate(model, 4, sampler, steps=4, generator=g(), labels=2, guidance=3.0, **kw).x
    other = generate(model, 4, sampler, steps=4, generator=g(), labels=0, **kw).x
    assert torch.equal(plain, again) and torch.isfinite(guided).all()
    assert not torch.allclose(plain, guided) and not torch.allclose(plain, other)


def test_edm_objective_is_guided_too():
    model = trained("edm")
    x = model.sample(3, "edm-heun", steps=3, labels=torch.tensor([0, 1, 2]), guidance=1.0,
                     generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 8, 8) and torch.isfinite(x).all()


def test_trained_sample_matches_the_conditional_model_at_w_0():
    model = trained()
    a = model.sample(3, "ddim", steps=5, labels=1, generator=torch.Generator().manual_seed(0))
    b = model.sample(3, "ddim", steps=5, labels=1, guidance=0, generator=torch.Generator().manual_seed(0))
    c = model.sample(3, "ddim", steps=5, generator=torch.Generator().manual_seed(0))        # unconditional
    assert torch.equal(a, b) and not torch.allclose(a, c) and model.num_classes == 3


@pytest.mark.parametrize("kw, match", [
    (dict(labels=3), r"labels must be classes in 0\.\.2, got values in 3\.\.3"),
    (dict(labels=-1), r"labels must be classes in 0\.\.2"),
    (dict(labels=torch.tensor([0, 1])), r"labels must be an int or an int64 tensor of shape \(3,\), got torch\.int64 of shape \(2,\)"),
    (dict(labels=torch.tensor([0.0, 1, 2])), r"labels must be an int or an int64 tensor .* got torch\.float32"),
    (dict(labels="1"), r"labels must be an int or an int64 tensor of shape \(3,\), got str"),
    (dict(labels=1, guidance=-0.5), r"guidance must be"),
    (dict(labels=1, guidance=math.nan), r"guidance must be"),
    (dict(labels=1, guidance=math.inf), r"guidance must be"),
    (dict(guidance=2.0), r"guidance=2\.0 needs labels"),
])
def test_bad_labels_and_guidance_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        trained().sample(3, "ddim", steps=2, **kw)


def test_labels_for_an_unconditional_model_are_refused():
    torch.manual_seed(0)
    plain = Trained(d.UNet(1, 8, (1, 2), attention=False), "eps", SCHED, shape=[1, 8, 8])
    with pytest.raises(ValueError, match=r"labels were given, but this model is unconditional"):
        plain.sample(2, "ddim", steps=2, labels=0)
    with pytest.raises(ValueError, match=r"this UNet is unconditional"):
        plain.model(torch.zeros(1, 1, 8, 8), torch.tensor([3]), torch.tensor([0]))
    assert plain.num_classes is None and "num_classes" not in plain.model.config   # old configs unchanged


def test_the_unet_checks_its_labels():
    net = tiny_conditional_unet()
    x, t = torch.zeros(2, 1, 8, 8), torch.tensor([1, 2])
    with pytest.raises(ValueError, match=r"labels c must be in 0\.\.3 \(3 is the null class\), got values in 0\.\.4"):
        net(x, t, torch.tensor([0, 4]))
    with pytest.raises(ValueError, match=r"c must be a LongTensor of shape \(2,\)"):
        net(x, t, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"num_classes must be"):
        d.UNet(1, 8, (1, 2), num_classes=0)
    rebuilt = d.models.build_model(net.config)
    rebuilt.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x, t, torch.tensor([0, 2])), net(x, t, torch.tensor([0, 2])))


def test_evaluate_sampler_reads_the_class_of_guided_samples():
    from diffedu import metrics
    from diffedu.models import DigitClassifier
    torch.manual_seed(0)
    clf = DigitClassifier(image_size=8).eval()
    model = trained()
    row, = metrics.evaluate_sampler(model, "ddim", steps=(3,), n=12, classifier=clf, reference=torch.zeros(12, 1, 8, 8) - 1,
                                    labels=2, guidance=1.5)
    x = model.sample(12, "ddim", steps=3, labels=2, guidance=1.5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert row["accuracy"] == metrics.class_accuracy(x, 2, clf) == metrics.class_accuracy(x, torch.full((12,), 2), clf)
    plain, = metrics.evaluate_sampler(model, "ddim", steps=(3,), n=12, classifier=clf, reference=torch.zeros(12, 1, 8, 8) - 1)
    assert "accuracy" not in plain
    with pytest.raises(ValueError, match=r"labels must be an int or have shape \(12,\)"):
        metrics.class_accuracy(x, torch.zeros(3, dtype=torch.long), clf)
