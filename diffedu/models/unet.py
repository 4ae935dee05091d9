"""A small, readable UNet for 1- or 3-channel images of 8 to 64 pixels.  [DDPM App. B; Ronneberger et al. 2015]

The shape of DDPM's network, cut down to what a CPU can train in minutes:

    x (B, C, H, W), t (B,)
    |  conv_in 3x3: C -> base channels
    |  down path: at each resolution, `num_res_blocks` ResBlocks, then a stride-2 conv halves H, W
    |             (every output is kept as a skip connection)
    |  middle:    ResBlock, self-attention over all H*W positions (optional), ResBlock
    |  up path:   at each resolution, num_res_blocks + 1 ResBlocks that each eat one skip
    |             (concatenated on channels), then nearest-neighbour upsampling + conv
    |  out: GroupNorm, SiLU, conv 3x3 -> C   (initialised at zero: the untrained net predicts 0)
    eps_hat (or EDM's F) of x's shape

Every ResBlock receives the time embedding: sinusoidal(t) -> MLP -> a per-channel shift added
inside the block, which is how the one network knows how noisy its input is.  A class-conditional
UNet (`num_classes=K`) adds a learned embedding of the label c in 0..K-1 to the time embedding; the
extra index K is the null class ("no label"), which label dropout trains so that the same network is
also the unconditional model that classifier-free guidance needs [CFG §3.2].

Imports: torch, _checks, .embedding.  Layer models.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int, check_number
from .embedding import sinusoidal_embedding

GROUPS = 8  # GroupNorm groups: statistics per group of channels, independent of the batch size
MAX_LEVELS = 8      # resolutions (2^7 halvings: far beyond the 64-pixel images this UNet is for)
MAX_BLOCKS = 64     # ResBlocks per resolution; a config asking for more is a damaged file, not a model
MAX_CLASSES = 100_000


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUPS, ch)


class ResBlock(nn.Module):
    """x + conv(act(norm(conv(act(norm(x))) + time shift))): the unit of computation.

    The residual path lets a deep stack start near the identity; GroupNorm keeps activations at a
    sane scale whatever the noise level; the time embedding enters as a per-channel bias.
    A 1x1 conv matches channels on the skip path when c_in != c_out.
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Every pixel attends to every other (one head): global context where the map is smallest.

    At the lowest resolution (e.g. 4x4 = 16 positions) attention is cheap and lets the network
    relate distant parts of the image, which convolutions of a small net cannot reach.
    """

    def __init__(self, ch: int):
        super().__init__()
        self.norm = _norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)

    def forward(self, x, emb=None):
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)      # each (B, C, HW)
        attn = torch.softmax(q.transpose(1, 2) @ k / C**0.5, dim=-1)            # (B, HW, HW)
        h = (v @ attn.transpose(1, 2)).reshape(B, C, H, W)
        return x + self.proj(h)


class Downsample(nn.Module):
    """Halve H and W with a learned stride-2 conv."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x, emb=None):
        return self.conv(x)


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour copy, then a conv to smooth it (no checkerboard artefacts)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, emb=None):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet(nn.Module):
    """eps_theta(x_t, t) or EDM's F(c_in x, c_noise) for images; see the module docstring for the layout.

    in_channels      1 (grey) or 3 (RGB)
    base_channels    channels at full resolution (a multiple of 8, for GroupNorm)
    channel_mults    one entry per resolution: channels = base * mult; len - 1 halvings, so an
                     image side must be divisible by 2^(len - 1)
    num_res_blocks   ResBlocks per resolution on the way down (one more on the way up)
    attention        self-attention in the middle block, at the lowest resolution
    dropout          inside ResBlocks (0 keeps training deterministic given the seeds)
    num_classes      None: unconditional, called as net(x, t); K: class-conditional, called as
                     net(x, t, c) with c a (B,) LongTensor in 0..K (K = `null_class`, no label;
                     c omitted means the null class for every sample)

    `t` is a (B,) tensor: a LongTensor of paper times 1..T or a float noise label; it is embedded
    as `t.float()`.  `.config` rebuilds the network: `diffedu.models.build_model(unet.config)`.
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 32, channel_mults=(1, 2, 2),
                 num_res_blocks: int = 1, attention: bool = True, dropout: float = 0.0, num_classes: int | None = None):
        super().__init__()
        in_channels = check_int(in_channels, "in_channels", lo=1)
        base_channels = check_int(base_channels, "base_channels", lo=GROUPS)
        num_res_blocks = check_int(num_res_blocks, "num_res_blocks", lo=1, hi=MAX_BLOCKS)
        if not isinstance(channel_mults, (list, tuple)):
            raise ValueError(f"channel_mults must be a list or tuple of integers, got {channel_mults!r}")
        if not 1 <= len(channel_mults) <= MAX_LEVELS:
            raise ValueError(f"channel_mults must have 1..{MAX_LEVELS} entries (one per resolution), "
                             f"got {len(channel_mults)}")
        channel_mults = tuple(check_int(m, "channel_mults entry", lo=1) for m in channel_mults)
        if not isinstance(attention, bool) and attention not in (0, 1):
            raise ValueError(f"attention must be True or False, got {attention!r}")
        dropout = check_number(dropout, "dropout", lo=0, hi=1, hi_open=True)
        if num_classes is not None:
            num_classes = check_int(num_classes, "num_classes", lo=1, hi=MAX_CLASSES)
        if base_channels % GROUPS:
            raise ValueError(f"base_channels must be a multiple of {GROUPS} (GroupNorm groups), got {base_channels}")
        self.config = dict(kind="unet", in_channels=in_channels, base_channels=base_channels,
                           channel_mults=list(channel_mults), num_res_blocks=num_res_blocks,
                           attention=bool(attention), dropout=float(dropout))
        if num_classes is not None:          # unconditional configs stay as they were (shipped files load)
            self.config["num_classes"] = num_classes
        self.num_classes = num_classes
        chans = [base_channels * m for m in channel_mults]
        emb_dim = 4 * base_channels
        self.base_channels = base_channels

        # time embedding: sinusoidal features of t, then a 2-layer MLP shared by all ResBlocks
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if num_classes is not None:          # labels 0..K-1 and the null class K, added to the time embedding
            self.class_emb = nn.Embedding(num_classes + 1, emb_dim)
            nn.init.zeros_(self.class_emb.weight)
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        # down path; `skips` records the channel count of every tensor pushed on the skip stack
        self.down = nn.ModuleList()
        skips, ch = [base_channels], base_channels
        for level, c in enumerate(chans):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, c, emb_dim, dropout))
                ch = c
                skips.append(ch)
            if level < len(chans) - 1:
                self.down.append(Downsample(ch))
                skips.append(ch)

        # middle, at the lowest resolution
        self.mid = nn.ModuleList([ResBlock(ch, ch, emb_dim, dropout),
                                  SelfAttention(ch) if attention else nn.Identity(),
                                  ResBlock(ch, ch, emb_dim, dropout)])

        # up path: mirror image, each ResBlock concatenates one skip
        self.up = nn.ModuleList()
        for level in reversed(range(len(chans))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), chans[level], emb_dim, dropout))
                ch = chans[level]
            if level > 0:
                self.up.append(Upsample(ch))

        self.out = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, in_channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    @property
    def null_class(self) -> int | None:
        """The label that means "no label" (K for a K-class UNet), None for an unconditional one."""
        return self.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        chans, n_down = self.config["in_channels"], len(self.config["channel_mults"]) - 1
        if x.dim() != 4 or x.shape[1] != chans:
            raise ValueError(f"UNet expects x of shape (B, {chans}, H, W), got {tuple(x.shape)}")
        if x.shape[2] % 2**n_down or x.shape[3] % 2**n_down:
            raise ValueError(f"image sides must be divisible by 2^{n_down} = {2**n_down} for "
                             f"channel_mults={self.config['channel_mults']}, got {x.shape[2]}x{x.shape[3]}")
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape ({x.shape[0]},), got {tuple(t.shape)}")
        emb = self.time_mlp(sinusoidal_embedding(t, self.base_channels).to(next(self.time_mlp.parameters()).dtype))
        if self.num_classes is not None:
            emb = emb + self.class_emb(self._labels(c, x.shape[0], x.device))
        elif c is not None:
            raise ValueError("this UNet is unconditional (num_classes=None): call it without labels")
        h = self.conv_in(x)
        stack = [h]
        for layer in self.down:
            h = layer(h, emb)
            stack.append(h)
        for layer in self.mid:
            h = layer(h, emb) if not isinstance(layer, nn.Identity) else h
        for layer in self.up:
            h = layer(torch.cat([h, stack.pop()], dim=1), emb) if isinstance(layer, ResBlock) else layer(h, emb)
        return self.out(h)

    def _labels(self, c, batch: int, device) -> torch.Tensor:
        """c as a (B,) LongTensor in 0..K (None: the null class K for all); wrong shape, dtype or range is a ValueError."""
        if c is None:
            return torch.full((batch,), self.num_classes, dtype=torch.long, device=device)
        if not isinstance(c, torch.Tensor) or c.dtype != torch.long or c.shape != (batch,):
            what = f"{c.dtype} of shape {tuple(c.shape)}" if isinstance(c, torch.Tensor) else type(c).__name__
            raise ValueError(f"c must be a LongTensor of shape ({batch},), got {what}")
        if c.device.type != "cpu":   # checked once by the caller (guidance, training): no host sync per step
            return c
        lo, hi = torch.stack(torch.aminmax(c)).tolist()
        if lo < 0 or hi > self.num_classes:
            raise ValueError(f"labels c must be in 0..{self.num_classes} ({self.num_classes} is the null class), "
                             f"got values in {lo}..{hi}")
        return c
