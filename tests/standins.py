"""Stand-ins for trained networks, the schedule table and a checkpoint comparison, shared by the tests."""
import torch

import diffedu as d


def gaussian_eps_model(sched):
    """The exact eps-prediction when the data are N(0, I): E[eps | x_t] = sqrt(1 - alpha_bar_t) x_t."""
    def eps_model(x, t):
        ab = sched.alpha_bar.to(x.device)[t].to(x.dtype)
        return (1 - ab).sqrt().reshape(-1, *([1] * (x.dim() - 1))) * x
    return eps_model


def wiggly_eps_model(sched):
    """A fixed nonlinear eps_model that depends on x and t: a stand-in for a trained network."""
    def eps_model(x, t):
        ab = sched.alpha_bar.to(x.device)[t].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))
        return torch.tanh(1.3 * x + 0.2) * (1 - ab).sqrt() + 0.1 * torch.sin(3 * x) * ab
    return eps_model


SCHEDULES = {
    "linear": lambda T: d.linear_betas(T),
    "cosine": lambda T: d.cosine_betas(T),
    "sigmoid": lambda T: d.sigmoid_betas(T),
}


def tiny_mlp():
    """The training tests' network: a 2-D MLP small enough that a run of dozens of steps takes a second."""
    torch.manual_seed(0)
    return d.MLP(hidden=32, depth=1, emb_dim=16)


def same_state(a, b):
    """Every tensor in two nested checkpoint structures is bitwise equal."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_state(x, y) for x, y in zip(a, b))
    return a == b


def tiny_conditional_unet(seed=0):
    """A tiny 3-class UNet for 8x8 images whose class embedding and output layer are random, not zero (labels matter)."""
    torch.manual_seed(seed)
    net = d.UNet(in_channels=1, base_channels=8, channel_mults=(1, 2), attention=False, num_classes=3)
    with torch.no_grad():
        net.class_emb.weight.normal_()
        net.out[-1].weight.normal_(std=0.1)
    return net.eval()
