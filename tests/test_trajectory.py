"""Trajectory recording: what a sampler appends is what xs / x0_hats give back, whatever the storage."""
import pytest
import torch

import diffedu as d
from diffedu._recording import empty_steps
from diffedu.trajectory import Trajectory


def _fill(traj, states, estimates):
    for x0, x in zip(estimates, states):
        traj.append(x0, x, 1)


@pytest.mark.parametrize("shape", [(5, 2), (10_000, 2), (64, 3, 32, 32)])  # below and above one huge page
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_recorded_tensors_come_back_exactly(shape, dtype):
    g = torch.Generator().manual_seed(0)
    n = 6
    states = [torch.randn(shape, generator=g).to(dtype) for _ in range(n + 1)]
    estimates = [torch.randn(shape, generator=g).to(dtype) for _ in range(n)]
    traj = Trajectory(states[0], torch.arange(n, -1, -1))
    _fill(traj, states[1:], estimates)
    assert torch.equal(traj.xs, torch.stack(states)) and traj.xs.dtype == dtype
    assert torch.equal(traj.x0_hats, torch.stack(estimates))
    assert traj.x is states[-1] and traj.nfe == n
    states[1].zero_()  # the trajectory holds copies, not the sampler's tensors
    assert not torch.equal(traj.xs[1], states[1])


def test_a_tensor_that_does_not_fit_falls_back_to_stacking():
    x = torch.zeros(3, 2)
    traj = Trajectory(x, torch.arange(4, -1, -1))
    traj.append(x + 1, x + 1, 1)
    traj.append(x.double() + 2, x.double() + 2, 1)  # another dtype: stacked by torch.stack's rules
    traj.append(x + 3, x + 3, 1)
    expected = torch.stack([x, x + 1, x.double() + 2, x + 3])
    assert torch.equal(traj.xs, expected) and traj.xs.dtype == expected.dtype
    traj.append(x + 4, x + 4, 1)
    traj.append(x + 5, x + 5, 1)  # more steps than ts announced
    assert torch.equal(traj.xs[-1], (x + 5).double()) and len(traj.x0_hats) == 5


def test_gradients_flow_through_a_recorded_trajectory():
    x_T = torch.randn(4, 2, requires_grad=True)
    sched = d.Schedule(d.linear_betas(100))
    traj = d.sample_ddim(lambda x, t: 0.5 * x, sched, x_T, steps=5)
    traj.xs.sum().backward()
    assert x_T.grad is not None and torch.isfinite(x_T.grad).all()


def test_record_false_keeps_the_first_and_last():
    sched = d.Schedule(d.linear_betas(100))
    x_T = torch.randn(4, 2, generator=torch.Generator().manual_seed(1))
    full = d.sample_ddim(lambda x, t: 0.5 * x, sched, x_T, steps=5)
    last = d.sample_ddim(lambda x, t: 0.5 * x, sched, x_T, steps=5, record=False)
    assert torch.equal(last.xs, full.xs[[0, -1]]) and torch.equal(last.x0_hats, full.x0_hats[-1:])


def test_empty_steps_shape_dtype_device():
    for like in (torch.zeros(3), torch.zeros(64, 3, 32, 32), torch.zeros(70_000, dtype=torch.bfloat16)):
        buf = empty_steps(11, like)
        assert buf.shape == (11, *like.shape) and buf.dtype == like.dtype and buf.is_contiguous()
