"""Notebook 05's exercises: DDPM's loss and training step, the cost of a sampler, the Fréchet distance.

Imports: torch, diffedu.forward, diffedu.losses, diffedu.models, diffedu.schedules, diffedu.sampling, diffedu.metrics
(the references), ._core.
"""
from __future__ import annotations

import torch

from ..forward import q_sample
from ..losses import l_simple
from ..metrics import frechet_distance
from ..models.unet import UNet
from ..sampling import nfe_of
from ..schedules import Schedule, linear_betas
from ._core import Exercise, _describe, _same, code, numeric

_SCHED = Schedule(linear_betas(1000))


def _eps_model(x, t):
    """A fixed stand-in network: any function of (x_t, t) will do for checking the loss."""
    return torch.tanh(x) * (t.double() / 1000).view(-1, *([1] * (x.dim() - 1)))


def _loss_inputs(g):
    B = int(torch.randint(1, 6, (1,), generator=g))
    x0 = torch.randn(B, 1, 4, 4, generator=g, dtype=torch.float64)
    return dict(eps_model=_eps_model, alpha_bar=_SCHED.alpha_bar, x0=x0, t=torch.randint(1, 1001, (B,), generator=g),
                eps=torch.randn(x0.shape, generator=g, dtype=torch.float64))


def _loss_reference():
    def loss(eps_model, alpha_bar, x0, t, eps):
        x_t = q_sample(_SCHED, x0, t, eps)
        return ((eps - eps_model(x_t, t)) ** 2).mean()
    return loss


_SMALL = Schedule(linear_betas(50))
_NET = dict(in_channels=1, base_channels=8, channel_mults=(1,), num_res_blocks=1, attention=False)


def _train_step_reference():
    def train_step(eps_model, optimizer, alpha_bar, x0, t, eps):
        sched = Schedule(1 - alpha_bar[1:] / alpha_bar[:-1])       # the schedule whose table alpha_bar is
        loss = l_simple(eps_model, sched, x0, t=t, eps=eps)        # l. 2-4: the loss `train` computes
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()                                           # l. 5: one gradient step
        return loss.item()
    return train_step


def _train_step_compare(answer, reference, steps: int = 3) -> tuple[bool, str]:
    """Two identical tiny UNets with their own optimisers: the learner's step trains one, the reference the
    other, on the same `steps` batches (x0, t, eps); the losses and then the weights must agree.

    Float64 and plain SGD, so that a right answer written another way (x_t from the formula rather than
    q_sample) agrees to round-off: Adam's first step is about lr * sign(g), which turns the round-off of a
    near-zero gradient into a whole step of difference."""
    if not callable(answer):
        return False, f"expected a function, got {type(answer).__name__}"
    torch.manual_seed(0)
    nets = [UNet(**_NET).double(), UNet(**_NET).double()]
    with torch.no_grad():                     # the output layer starts at 0: perturb it, so the loss sees x_t
        for p in nets[0].parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()), dtype=p.dtype))
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [torch.optim.SGD(net.parameters(), lr=0.05) for net in nets]
    g = torch.Generator().manual_seed(1)
    for step in range(1, steps + 1):
        x0 = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
        batch = dict(alpha_bar=_SMALL.alpha_bar, x0=x0, t=torch.randint(1, _SMALL.T + 1, (4,), generator=g),
                     eps=torch.randn(x0.shape, generator=g, dtype=torch.float64))
        shapes = ", ".join(f"{k} {_describe(v)}" for k, v in batch.items())
        try:
            yours = answer(nets[0], opts[0], **{k: v.clone() for k, v in batch.items()})
        except Exception as err:
            return False, f"your function raised {type(err).__name__}: {err} (step {step}; inputs: {shapes})"
        if yours is None:
            return False, "not attempted yet: your function returns None (return the loss as a float)"
        expected = reference(nets[1], opts[1], **batch)
        ok, where = _same(float(yours.detach()) if torch.is_tensor(yours) else yours, expected, 1e-4, 1e-6)
        if not ok:
            return False, f"the loss of step {step}: {where} (inputs: {shapes})"
        for (name, a), b in zip(nets[0].named_parameters(), nets[1].parameters()):
            ok, where = _same(a.detach(), b.detach(), 1e-4, 1e-6)
            if not ok:
                return False, (f"the loss of step {step} is right, but after it the weights {name} differ: {where}. "
                               "Did you zero the gradients, call backward and take the optimiser's step?")
    return True, f"the same losses and the same weights as the reference after {steps} steps"


def _gaussians_inputs(g):
    D = int(torch.randint(1, 4, (1,), generator=g))
    a, b = torch.randn(2, D, D, generator=g, dtype=torch.float64)
    return dict(mu1=torch.randn(D, generator=g, dtype=torch.float64), sigma1=a @ a.T + 0.1 * torch.eye(D, dtype=torch.float64),
                mu2=torch.randn(D, generator=g, dtype=torch.float64), sigma2=b @ b.T + 0.1 * torch.eye(D, dtype=torch.float64))


def _frechet_reference():
    def fd(mu1, sigma1, mu2, sigma2):
        return torch.tensor(frechet_distance(mu1.numpy(), sigma1.numpy(), mu2.numpy(), sigma2.numpy()), dtype=torch.float64)
    return fd


EXERCISES = [
    Exercise("05.l_simple", "code",
             "write loss(eps_model, alpha_bar, x0, t, eps) -> the L_simple loss of one training step of DDPM "
             "Algorithm 1 for the given times t (B,) and noise eps: noise x0 to x_t, predict, mean squared error "
             "(alpha_bar is the schedule's table, indexed by t)  [DDPM Alg. 1, eq. 14]",
             code(_loss_inputs), _loss_reference,
             hint="x_t = sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) eps with alpha_bar[t] shaped (B, 1, 1, 1); "
                  "the loss is the mean of (eps - eps_model(x_t, t))^2"),
    Exercise("05.train_step", "code",
             "write train_step(eps_model, optimizer, alpha_bar, x0, t, eps) -> the loss (a float): one iteration of DDPM "
             "Algorithm 1 on the batch x0 with its times t and noise eps given: the L_simple loss, then one gradient "
             "step of the optimizer  [DDPM Alg. 1]",
             _train_step_compare, _train_step_reference,
             hint="loss = the L_simple of the exercise before; optimizer.zero_grad(); loss.backward(); optimizer.step(); "
                  "return loss.item()"),
    Exercise("05.heun_nfe", "numeric",
             "how many network calls does edm-heun make with 26 steps (the last step is an Euler step)?  [EDM Alg. 1]",
             numeric(rtol=0), lambda: nfe_of("edm-heun", 26),
             hint="two calls per step, except the step to sigma = 0, which has no second slope"),
    Exercise("05.ddpm_calls_for_a_grid", "numeric",
             "DDPM with T = 1000 steps makes a grid of 64 images. How many images pass through the network in all "
             "(one image through the network once counts 1)?",
             numeric(rtol=0), lambda: 64 * nfe_of("ddpm", 1000),
             hint="each of the T steps calls the network once on the whole batch"),
    Exercise("05.frechet_distance", "code",
             "write fd(mu1, sigma1, mu2, sigma2) -> the Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2), a "
             "0-d float64 tensor (torch.linalg or scipy.linalg.sqrtm for the matrix square root)  [FID]",
             code(_gaussians_inputs, rtol=1e-6, atol=1e-9), _frechet_reference,
             hint="||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))"),
]
