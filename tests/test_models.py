"""Networks: shapes for every supported size, both kinds of t, rebuild from .config, clear errors."""
import pytest
import torch

import diffedu
from diffedu.models import DigitClassifier, build_model
from diffedu.models.embedding import sinusoidal_embedding


def _perturb(model):
    """Random weights everywhere (the output layer starts at zero)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("channels,size,mults", [(1, 8, (1, 2)), (3, 16, (1, 2, 2)), (1, 32, (1, 2, 2, 2)),
                                                 (3, 64, (1, 1, 2, 2))])
def test_unet_shapes_for_1_or_3_channels_and_8_to_64_pixels(channels, size, mults):
    net = diffedu.UNet(in_channels=channels, base_channels=8, channel_mults=mults, attention=True)
    x = torch.randn(2, channels, size, size)
    out_long = net(x, torch.tensor([1, 1000]))
    out_float = net(x, torch.tensor([-1.2, 0.7]))       # EDM's c_noise = ln(sigma) / 4
    assert out_long.shape == x.shape and out_float.shape == x.shape


def test_untrained_output_is_zero_and_time_matters():
    net = diffedu.UNet(base_channels=16, channel_mults=(1, 2))
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(net(x, torch.tensor([1, 2, 3])), torch.zeros_like(x))
    _perturb(net)
    a, b = net(x, torch.tensor([1, 1, 1])), net(x, torch.tensor([500, 500, 500]))
    assert not torch.allclose(a, b)


def test_long_and_float_times_embed_the_same():
    t = torch.tensor([1, 17, 999])
    assert torch.equal(sinusoidal_embedding(t, 32), sinusoidal_embedding(t.float(), 32))
    e = sinusoidal_embedding(torch.tensor([0.0]), 8)
    assert torch.equal(e, torch.tensor([[1.0, 1, 1, 1, 0, 0, 0, 0]]))


@pytest.mark.parametrize("make", [lambda: diffedu.UNet(in_channels=3, base_channels=16, channel_mults=(1, 2),
                                                       num_res_blocks=2, attention=False),
                                  lambda: diffedu.MLP(dim=3, hidden=32, depth=2),
                                  lambda: DigitClassifier(image_size=8, width=8)])
def test_build_model_from_config_rebuilds_the_same_network(make):
    a = _perturb(make())
    b = build_model(a.config)
    assert type(b) is type(a) and b.config == a.config
    b.load_state_dict(a.state_dict())
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]


def test_mlp_forward_and_zero_start():
    m = diffedu.MLP()
    x = torch.randn(5, 2)
    assert torch.equal(m(x, torch.randint(1, 1001, (5,))), torch.zeros(5, 2))
    assert _perturb(m)(x, torch.full((5,), 0.3)).shape == (5, 2)


def test_model_errors_are_clear():
    net = diffedu.UNet(base_channels=8, channel_mults=(1, 2, 2))
    with pytest.raises(ValueError, match="divisible by 2\\^2"):
        net(torch.randn(1, 1, 10, 10), torch.tensor([1]))
    with pytest.raises(ValueError, match="shape \\(B, 1, H, W\\)"):
        net(torch.randn(1, 3, 8, 8), torch.tensor([1]))
    with pytest.raises(ValueError, match="t must have shape"):
        net(torch.randn(2, 1, 8, 8), torch.tensor([1]))
    with pytest.raises(ValueError, match="multiple of 8"):
        diffedu.UNet(base_channels=12)
    with pytest.raises(ValueError, match="MLP expects"):
        diffedu.MLP()(torch.randn(2, 3), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="kind"):
        build_model({"kind": "transformer"})
    with pytest.raises(ValueError, match="cannot build"):
        build_model({"kind": "mlp", "widht": 3})


def test_classifier_features_and_logits():
    clf = DigitClassifier(image_size=8)
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert clf.features(x).shape == (4, 64) and clf(x).shape == (4, 10)
    with pytest.raises(ValueError, match="16, 16"):
        DigitClassifier(image_size=16)(x)


def test_small_models_are_small():
    unet = diffedu.UNet(base_channels=32, channel_mults=(1, 2), num_res_blocks=2)
    assert sum(p.numel() for p in unet.parameters()) < 1_500_000


@pytest.mark.parametrize("make,match", [
    (lambda: diffedu.UNet(channel_mults="12"), "channel_mults must be a list"),
    (lambda: diffedu.UNet(channel_mults=(1,) * 9), "channel_mults must have 1..8 entries"),
    (lambda: diffedu.UNet(channel_mults=()), "channel_mults must have 1..8 entries"),
    (lambda: diffedu.UNet(dropout=-0.1), "dropout must be in \\[0, 1\\)"),
    (lambda: diffedu.UNet(dropout=1.0), "dropout must be in \\[0, 1\\)"),
    (lambda: diffedu.UNet(attention="false"), "attention must be True or False"),
    (lambda: diffedu.UNet(num_res_blocks=65), "num_res_blocks must be in 1..64"),
    (lambda: diffedu.UNet(in_channels=0), "in_channels must be in >= 1"),
    (lambda: diffedu.MLP(depth=1001), "depth must be in 1..1000"),
    (lambda: diffedu.MLP(hidden=0), "hidden must be in >= 1"),
    (lambda: DigitClassifier(width=-1), "width must be in >= 1"),
    (lambda: DigitClassifier(feature_dim=0), "feature_dim must be in >= 1"),
])
def test_implausible_configs_are_refused_by_the_constructors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_build_model_on_the_meta_device_allocates_nothing():
    with torch.device("meta"):
        big = build_model(dict(kind="mlp", dim=2, hidden=100000, depth=50, emb_dim=16))
    assert all(p.is_meta for p in big.parameters())
    assert sum(p.numel() for p in big.parameters()) > 10**12
    with pytest.raises(ValueError, match="kind"):
        build_model({"kind": ["mlp"]})
    with pytest.raises(ValueError, match="kind"):
        build_model(["mlp"])
    assert diffedu.UNet(attention=1).config["attention"] is True


@pytest.mark.parametrize("make, shape", [(lambda: diffedu.UNet(in_channels=1, base_channels=8, channel_mults=(1, 2),
                                                                attention=True), (3, 1, 8, 8)),
                                         (lambda: diffedu.MLP(), (3, 2))])
def test_a_network_converted_to_float64_runs_and_agrees_with_float32(make, shape):
    """model.double() works (the time embedding follows the weights' dtype): the exercises' checkers train
    in float64 so that round-off cannot tell two right answers apart."""
    m32 = _perturb(make())
    m64 = make().double()
    m64.load_state_dict(m32.state_dict())
    x, t = torch.randn(*shape), torch.tensor([1, 500, 1000])
    y32, y64 = m32(x, t), m64(x.double(), t)
    assert y64.dtype == torch.float64 and y32.dtype == torch.float32
    assert torch.allclose(y64.float(), y32, rtol=1e-4, atol=1e-4)
