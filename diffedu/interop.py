"""Models trained elsewhere: a diffusers `UNet2DModel` as the eps-model and `Schedule` every sampler takes.

diffusers counts timesteps k = 0..T-1 where the paper (and diffedu) counts t = 1..T, so the network is
called at k = t - 1; its scheduler's betas become the Schedule (float64, beta_1..beta_T).  A network that
predicts v or x_0 (`prediction_type` "v_prediction" or "sample") is turned into an eps-model with the
package's one set of conversions (`diffedu.param`).  diffusers itself is not imported: anything that is
called as `unet(x, k).sample` and a scheduler with `betas` and `config.prediction_type` will do.

    from diffusers import DDPMPipeline
    pipe = DDPMPipeline.from_pretrained(...)          # or any UNet2DModel and its scheduler
    eps_model, sched = diffedu.from_diffusers(pipe.unet, pipe.scheduler)
    x = diffedu.sample_ddim(eps_model, sched, torch.randn(8, 3, 32, 32), 50).x

Imports: torch, diffedu base (_ops) and core (schedules, param).
"""
from __future__ import annotations

import torch
from torch import nn

from ._ops import broadcast_to_batch
from .param import eps_from_v, eps_from_x0
from .schedules import Schedule, linear_betas

PREDICTIONS = ("epsilon", "v_prediction", "sample")


class DiffusersEps(nn.Module):
    """eps_theta(x_t, t) of a diffusers UNet2DModel: the network at its timestep k = t - 1, its output
    converted to eps when it predicts v or x_0.  [DDPM eq. 11; Salimans & Ho §4 for v]"""

    def __init__(self, unet: nn.Module, sched: Schedule, prediction_type: str = "epsilon"):
        super().__init__()
        if prediction_type not in PREDICTIONS:
            raise ValueError(f"prediction_type must be one of {', '.join(PREDICTIONS)}; got {prediction_type!r}")
        self.unet, self.sched, self.prediction_type = unet, sched, prediction_type

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must have shape ({x.shape[0]},): one paper time per sample; got {tuple(t.shape)}")
        self.sched.check_t(t, "t (paper times; diffusers' k = t - 1)", lo=1)
        out = self.unet(x, t - 1).sample
        if self.prediction_type == "epsilon":
            return out
        alpha_bar = broadcast_to_batch(self.sched.alpha_bar.to(x.device)[t], x).to(x.dtype)
        if self.prediction_type == "v_prediction":
            return eps_from_v(x, out, alpha_bar)
        return eps_from_x0(x, out, alpha_bar)


def from_diffusers(unet: nn.Module, scheduler=None) -> tuple[DiffusersEps, Schedule]:
    """(eps_model, sched) for every diffedu sampler from a diffusers UNet2DModel and its scheduler.

    scheduler   a diffusers DDPMScheduler / DDIMScheduler (its `betas` and `config.prediction_type`), or None
                for DDPM's linear schedule with T = 1000 (diffusers' default) and eps-prediction
    """
    if not callable(unet):
        raise ValueError(f"unet must be a diffusers UNet2DModel (called as unet(x, k).sample); got {type(unet).__name__}")
    if scheduler is None:
        sched = Schedule(linear_betas(1000))
        return DiffusersEps(unet, sched), sched
    betas = getattr(scheduler, "betas", None)
    config = getattr(scheduler, "config", None)
    if betas is None or config is None:
        raise ValueError(f"scheduler must be a diffusers scheduler with `betas` and `config` (e.g. DDPMScheduler); "
                         f"got {type(scheduler).__name__}")
    sched = Schedule(torch.as_tensor(betas, dtype=torch.float64))
    prediction_type = getattr(config, "prediction_type", "epsilon")      # old schedulers predate the field
    return DiffusersEps(unet, sched, prediction_type), sched
