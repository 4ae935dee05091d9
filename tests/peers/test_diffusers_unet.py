"""`diffedu.from_diffusers`: a diffusers UNet2DModel (randomly initialised, tiny) sampled by diffedu's DDIM
against diffusers' own DDIMPipeline with the same starting noise; and the v-/x0-prediction conversions."""
import numpy as np
import pytest
import torch

import diffedu as d
from diffusers import DDIMPipeline, DDIMScheduler, DDPMScheduler, UNet2DModel


def tiny_unet(seed=0):
    torch.manual_seed(seed)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)
    return unet.eval()


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_on_a_diffusers_unet_matches_diffusers_pipeline(eta):
    unet = tiny_unet()
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="linear", clip_sample=False)
    pipe = DDIMPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(batch_size=4, generator=torch.Generator().manual_seed(3), eta=eta, num_inference_steps=20,
                  output_type="np").images                                      # (x / 2 + 1/2).clamp(0, 1), NHWC

    eps_model, sched = d.from_diffusers(unet, scheduler)
    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(4, 1, 8, 8, generator=g)                                  # the pipeline's first draw
    with torch.no_grad():
        ours = d.sample_ddim(eps_model, sched, x_T, 20, eta=eta, spacing="leading", generator=g, record=False).x
    ours = (ours / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-4)      # eta = 1: the same generator, drawn in the same order


def test_the_schedule_is_the_scheduler_s_and_the_network_is_called_at_t_minus_1():
    unet = tiny_unet()
    scheduler = DDPMScheduler(num_train_timesteps=500, beta_schedule="scaled_linear")
    eps_model, sched = d.from_diffusers(unet, scheduler)
    assert sched.T == 500
    torch.testing.assert_close(sched.alpha_bar[1:].float(), scheduler.alphas_cumprod, rtol=1e-5, atol=1e-6)
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 500])
    with torch.no_grad():
        torch.testing.assert_close(eps_model(x, t), unet(x, t - 1).sample)
    with pytest.raises(ValueError, match=r"t \(paper times; diffusers' k = t - 1\) must be in 1..500, got values from 0 to 10"):
        eps_model(x, torch.tensor([0, 10]))
    _, default = d.from_diffusers(unet)
    torch.testing.assert_close(default.alpha_bar[1:].float(), DDPMScheduler().alphas_cumprod)


@pytest.mark.parametrize("prediction_type", ["v_prediction", "sample"])
def test_v_and_x0_networks_become_eps_networks(prediction_type):
    """The network's output read as v (or x_0) and converted gives the eps that, put back into the
    definition of v (or of x_0 from eps), returns the network's output."""
    unet = tiny_unet()
    scheduler = DDIMScheduler(prediction_type=prediction_type)
    eps_model, sched = d.from_diffusers(unet, scheduler)
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([5, 400, 990])
    with torch.no_grad():
        eps, out = eps_model(x, t), unet(x, t - 1).sample
    ab = sched.alpha_bar[t].float().view(-1, 1, 1, 1)
    back = d.v_from_eps(x, eps, ab) if prediction_type == "v_prediction" else d.x0_from_eps(x, eps, ab)
    torch.testing.assert_close(back, out, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="prediction_type must be one of"):
        d.from_diffusers(unet, DDIMScheduler(prediction_type="flow"))
