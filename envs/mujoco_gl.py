"""MuJoCo's OpenGL, for the families that render with it (Meta-World's, the locomotion ones).

MuJoCo picks its OpenGL from ``MUJOCO_GL``: GLFW by default, which needs a window and so a
display. On a Linux machine without one (a server, CI, a container), :func:`headless_gl` sets
``MUJOCO_GL=egl`` (off-screen rendering) before the first frame, unless the user set it; a
``MUJOCO_GL`` naming a library the machine lacks becomes one line (:func:`no_gl`) saying what
to set, instead of PyOpenGL's traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import gymnasium as gym

from metagym.errors import error_line


def headless_gl() -> None:
    """Set ``MUJOCO_GL=egl`` on Linux with no display and no ``MUJOCO_GL`` (see the module docstring)."""
    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and not os.environ.get("MUJOCO_GL"):
        os.environ["MUJOCO_GL"] = "egl"


def no_gl(error: BaseException) -> str:
    """One line: MuJoCo found no OpenGL to render with, and what to set."""
    backend = os.environ.get("MUJOCO_GL") or "glfw"
    return (
        f"MuJoCo found no OpenGL to render with, MUJOCO_GL={backend} ({error_line(error)[:160]}); "
        "without a display set MUJOCO_GL=egl (needs libEGL, e.g. Debian's libegl1) or MUJOCO_GL=osmesa "
        "(needs libosmesa6); with one, set DISPLAY"
    )


def import_mujoco(load: Callable[[], Any]) -> Any:
    """``load()`` (an import of MuJoCo or of what builds on it). MuJoCo makes its OpenGL context
    type at import from ``MUJOCO_GL``: a library that is missing (or a ``PYOPENGL_PLATFORM`` that
    contradicts it) is :func:`no_gl`'s line, as a ``gymnasium.error.DependencyNotInstalled``; a
    module that is not installed is raised as it is (ModuleNotFoundError)."""
    try:
        return load()
    except ModuleNotFoundError:
        raise
    except Exception as error:
        if os.environ.get("MUJOCO_GL"):
            raise gym.error.DependencyNotInstalled(no_gl(error)) from None
        raise


def render_frame(env: Any) -> Any:
    """``env.render()`` of a Gymnasium MuJoCo env, off-screen where there is no display; the
    first frame failing for want of OpenGL is :func:`no_gl`'s line (``DependencyNotInstalled``)."""
    headless_gl()
    try:
        return env.render()
    except gym.error.DependencyNotInstalled:
        raise
    except Exception as error:  # MuJoCo's FatalError, PyOpenGL's errors, an ImportError
        if getattr(getattr(env, "mujoco_renderer", None), "_viewers", None):
            raise  # it has rendered before: not a missing OpenGL
        raise gym.error.DependencyNotInstalled(no_gl(error)) from None
