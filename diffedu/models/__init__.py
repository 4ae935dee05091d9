"""Networks: `MLP` (2-D data), `UNet` (images), `DigitClassifier` (features for the digits metrics),
`Generator` and `Discriminator` (the DCGAN baseline), and `GaussianMixture` (the exact denoiser of a
mixture, no training).

Every trainable network carries a `.config` dict; `build_model(config)` rebuilds it, which is
how checkpoints and the shipped assets restore a model.

Imports: torch and the model modules beside it; they import core maths and _checks only.  Layer models.
"""
from __future__ import annotations

from .analytic import GaussianMixture
from .classifier import DigitClassifier
from .gan import Discriminator, Generator
from .mlp import MLP
from .unet import UNet

KINDS = {"mlp": MLP, "unet": UNet, "classifier": DigitClassifier, "gan_generator": Generator,
         "gan_discriminator": Discriminator}


def build_model(config: dict):
    """A fresh (untrained) network from a `.config` dict: {"kind": one of KINDS, **kwargs}.

    The constructors check every value (ValueError naming it and its allowed range).  Under
    `with torch.device("meta"):` nothing is allocated: how the io layer sizes a file's model first.
    """
    if not isinstance(config, dict) or not isinstance(config.get("kind"), str) or config["kind"] not in KINDS:
        kind = config.get("kind") if isinstance(config, dict) else config
        raise ValueError(f"model config must be a dict with 'kind' one of {sorted(KINDS)}, got {kind!r}")
    kwargs = {k: v for k, v in config.items() if k != "kind"}
    try:
        return KINDS[config["kind"]](**kwargs)
    except TypeError as err:
        raise ValueError(f"cannot build a {config['kind']!r} from config {config}: {err}") from None


__all__ = ["MLP", "UNet", "DigitClassifier", "Generator", "Discriminator", "GaussianMixture", "build_model"]
