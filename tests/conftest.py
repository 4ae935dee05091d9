import pytest
import torch

import diffedu as d
from standins import SCHEDULES, gaussian_eps_model, wiggly_eps_model  # noqa: F401


@pytest.fixture
def linear_sched():
    return d.Schedule(d.linear_betas(1000))


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP spinning costs a lot."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
