"""DCGAN's generator and discriminator for 28x28 grey digits: the course's one-network-call baseline.  [DCGAN §3]

A diffusion sampler calls its network tens to a thousand times per image; a GAN's generator maps
noise to an image in one call, x = G(z), z ~ N(0, I).  The two networks, for width w:

    Generator G(z)       z (B, z_dim) -> Linear -> (2w, 7, 7) -> BatchNorm, ReLU
                         -> ConvTranspose 4x4 stride 2 -> (w, 14, 14) -> BatchNorm, ReLU
                         -> ConvTranspose 4x4 stride 2 -> (1, 28, 28) -> tanh      (images in [-1, 1])
    Discriminator D(x)   x (B, 1, 28, 28) -> conv 4x4 stride 2 -> (w, 14, 14) -> LeakyReLU(0.2)
                         -> conv 4x4 stride 2 -> (2w, 7, 7) -> BatchNorm, LeakyReLU(0.2)
                         -> flatten -> Linear -> one logit per image (B,)

DCGAN's guidelines [DCGAN §3]: strided (transposed) convolutions instead of pooling, batch norm in
both networks except the generator's output and the discriminator's input layer, ReLU in G with tanh
at its output, LeakyReLU in D; the only fully connected layers are G's projection of z and D's last
layer.  Its weights start from N(0, 0.02) [DCGAN §4]: `dcgan_init_`, drawn from a generator passed in.
Training them is an app: `diffedu.gan.train_gan`.

Imports: torch, _checks.  Layer models.
"""
from __future__ import annotations

import torch
from torch import nn

from .._checks import check_int

MAX_WIDTH = 4096      # channels; a config asking for more is a damaged file, not a model
MAX_Z_DIM = 100_000
SIDE = 28             # image side: 28 -> 14 -> 7 and back


class Generator(nn.Module):
    """G(z): noise z (B, z_dim) -> images (B, 1, 28, 28) in [-1, 1], one network call.  [DCGAN §3, Fig. 1]

    `.config` rebuilds it: `diffedu.models.build_model(G.config)`; `sample(n, generator)` draws z ~ N(0, I).
    """

    def __init__(self, z_dim: int = 64, width: int = 64):
        super().__init__()
        self.config = dict(kind="gan_generator", z_dim=check_int(z_dim, "z_dim", lo=1, hi=MAX_Z_DIM),
                           width=check_int(width, "width", lo=1, hi=MAX_WIDTH))
        w, s = width, SIDE // 4
        self.project = nn.Linear(z_dim, 2 * w * s * s, bias=False)   # no bias: the batch norm's shift is one
        self.net = nn.Sequential(
            nn.Unflatten(1, (2 * w, s, s)), nn.BatchNorm2d(2 * w), nn.ReLU(),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),  # 7 -> 14
            nn.ConvTranspose2d(w, 1, 4, stride=2, padding=1), nn.Tanh(),                                     # 14 -> 28
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z_dim = self.config["z_dim"]
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != z_dim:
            shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"Generator expects z of shape (B, {z_dim}), got {shape}")
        return self.net(self.project(z))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """n images G(z), z ~ N(0, I) drawn from `generator` (default: seeded with 0), never the global RNG.

        Batch norm uses its running statistics (eval mode, so a sample does not depend on the others
        in its batch); the network's train/eval mode is restored afterwards.  z is drawn on the
        generator's device (a CPU generator gives the same z on every machine) and the network runs
        where its weights are; the images are returned on `device` (default: the network's device).
        """
        n = check_int(n, "n", lo=1)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        here = self.project.weight.device
        z = torch.randn((n, self.config["z_dim"]), generator=g, device=g.device).to(here)
        was_training = self.training
        try:
            x = self.eval()(z)
        finally:
            self.train(was_training)
        return x if device is None else x.to(device)


class Discriminator(nn.Module):
    """D(x): images (B, 1, 28, 28) -> one logit per image (B,); sigmoid(logit) = P(x is real).  [DCGAN §3]

    `.config` rebuilds it: `diffedu.models.build_model(D.config)`.
    """

    def __init__(self, width: int = 64):
        super().__init__()
        self.config = dict(kind="gan_discriminator", width=check_int(width, "width", lo=1, hi=MAX_WIDTH))
        w, s = width, SIDE // 4
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),                                  # 28 -> 14
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2),  # -> 7
            nn.Flatten(), nn.Linear(2 * w * s * s, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or tuple(x.shape[1:]) != (1, SIDE, SIDE):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"Discriminator expects x of shape (B, 1, {SIDE}, {SIDE}), got {shape}")
        return self.net(x).squeeze(1)


@torch.no_grad()
def dcgan_init_(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """Weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0, running statistics reset.  [DCGAN §4]

    Every value is drawn from `generator` (on the CPU, then copied to the weights' device), so the
    same seed gives the same start on every machine; it also fills a network made with `to_empty`.
    A layer with weights of another type is a ValueError (it would keep uninitialised values).
    """
    def normal(p, mean):
        p.copy_(mean + 0.02 * torch.randn(p.shape, generator=generator, device=generator.device))

    for name, m in net.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            normal(m.weight, 0.0)
        elif isinstance(m, nn.BatchNorm2d):
            normal(m.weight, 1.0)
            m.reset_running_stats()
        elif any(True for _ in m.parameters(recurse=False)):
            raise ValueError(f"dcgan_init_ does not know how to initialise {name!r} ({type(m).__name__})")
        if getattr(m, "bias", None) is not None:
            m.bias.zero_()
    return net
