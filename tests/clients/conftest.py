"""Runs a client script (a keras-io example written again for rnnkit) as `python script.py`
would, in a temporary working folder, and hands its module globals to the test."""

import os
import runpy

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture
def run_client(tmp_path, monkeypatch):
    """Returns `run(name)`: executes `tests/clients/<name>.py` as `__main__` with the current
    folder set to a temporary one (checkpoints and saved models land there), matplotlib on the
    Agg backend and every random generator seeded, and returns the script's globals."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    def run(name):
        import rnnkit

        rnnkit.utils.set_random_seed(0)
        return runpy.run_path(os.path.join(HERE, f"{name}.py"), run_name="__main__")

    return run
