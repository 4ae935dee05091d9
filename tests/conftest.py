import pytest

import diffedu as d
from standins import SCHEDULES, gaussian_eps_model, wiggly_eps_model  # noqa: F401


@pytest.fixture
def linear_sched():
    return d.Schedule(d.linear_betas(1000))
