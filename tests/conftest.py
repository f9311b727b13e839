"""Shared fixtures: tiny real data, no torch.compile (its first compile costs ~30 s)."""

import os

import pytest
import torch

os.environ["DATADISTILL_COMPILE"] = "0"


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    os.environ["DATADISTILL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(scope="session")
def digits():
    from datadistill import data

    return data.load("digits")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
