"""Shared fixtures: tiny real data, no torch.compile (its first compile costs ~30 s)."""

import os

import pytest
import torch

os.environ["DATADISTILL_COMPILE"] = "0"


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    os.environ["DATADISTILL_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    # under pytest-xdist the workers share the cores: one thread each on CI's two, and the
    # processes a test starts inherit the same share
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    threads = max(1, (os.cpu_count() or 1) // workers)
    if workers > 1:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _own_folder(tmp_path, monkeypatch):
    """Each test runs in its own empty folder: a command's default outputs (runs/...) land
    there, never in the checkout, and a test that leaves something behind is caught."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def digits():
    from datadistill import data

    return data.load("digits")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
