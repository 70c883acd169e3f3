"""Test settings: headless pygame, one torch thread (if torch is present)."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

try:  # the agents extra is optional; envs tests run without it
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
