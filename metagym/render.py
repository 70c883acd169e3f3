"""Showing frames: a lazily created pygame window, a mosaic of frames, a text caption.

Families draw their frames with pygame onto off-screen surfaces (see ``metagym.envs.metagrid``)
and hand back numpy arrays; this module puts finished frames on screen or annotates them.
pygame is imported only when something is drawn, so making and stepping an env never needs it,
and ``rgb_array`` rendering works headless with ``SDL_VIDEODRIVER=dummy``. Only a window
initialises pygame's display (``pygame.display.init()``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from metagym.errors import ArgumentError


class Window:
    """A pygame window that shows RGB frames at a fixed frame rate.

    Args:
        title: Window caption.
        fps: Frames per second to pace :meth:`show` at (0 for no pacing).
    """

    def __init__(self, title: str, fps: int) -> None:
        self.title = title
        self.fps = fps
        self._screen: Any = None
        self._clock: Any = None

    def show(self, frame: np.ndarray) -> None:
        """Draw ``frame`` (H, W, 3) uint8 in the window, opening it on first use."""
        import pygame  # lazy: only a window needs pygame's display

        height, width = frame.shape[:2]
        if self._screen is None or self._screen.get_size() != (width, height):
            pygame.display.init()
            pygame.display.set_caption(self.title)
            self._screen = pygame.display.set_mode((width, height))
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self._screen.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        if self.fps:
            self._clock.tick(self.fps)

    def close(self) -> None:
        """Close the window if it is open."""
        if self._screen is not None:
            import pygame

            pygame.display.quit()
            self._screen = None


def mosaic(frames: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """Tile frames into a near-square grid, ``pad`` black pixels apart (cells fit the largest)."""
    if not frames:
        raise ArgumentError("frames", "expected at least one frame")
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    cols = math.ceil(math.sqrt(len(frames)))
    rows = math.ceil(len(frames) / cols)
    out = np.zeros((rows * (height + pad) - pad, cols * (width + pad) - pad, 3), dtype=np.uint8)
    for k, frame in enumerate(frames):
        r, c = divmod(k, cols)
        top, left = r * (height + pad), c * (width + pad)
        out[top : top + frame.shape[0], left : left + frame.shape[1]] = frame
    return out


def caption(frame: np.ndarray, lines: list[str], size: int = 16, min_width: int = 320) -> np.ndarray:
    """``frame`` with a strip of text lines above it (for the viewer: episode, return, task).

    Frames narrower than ``min_width`` are first scaled up by a whole factor so the text fits.
    """
    import pygame  # lazy

    scale = max(1, -(-min_width // frame.shape[1]))
    frame = frame.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else frame
    pygame.font.init()
    font = pygame.font.Font(None, size)
    strip_h = len(lines) * (size - 2) + 6
    height, width = frame.shape[:2]
    surface = pygame.Surface((width, height + strip_h))
    surface.fill((30, 30, 40))
    surface.blit(pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2))), (0, strip_h))
    for k, line in enumerate(lines):
        surface.blit(font.render(line, True, (235, 235, 235)), (4, 3 + k * (size - 2)))
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


def cell_label(value: float) -> str:
    """A probability in [0, 1] as a heat map cell shows it: two decimals without the leading 0
    (".37"), "1.0" for anything that rounds to 1."""
    text = f"{value:.2f}"
    return "1.0" if text == "1.00" else text.removeprefix("0")


def heat_panel(
    values: np.ndarray, height: int, marker: tuple[int, int] | None = None, title: str = "", labels: bool = True
) -> np.ndarray:
    """A (rows, cols) grid of ``values`` in [0, 1] drawn as a heat map ``height`` pixels high
    (white 0 to dark red 1), each cell labelled with its value (unless not ``labels``),
    ``marker`` (row, col) circled and ``title`` on a strip above: a belief shown beside an env's
    frame."""
    import pygame  # lazy

    rows, cols = values.shape
    strip = 18 if title else 0
    cell = max(8, (height - strip) // rows)
    surface = pygame.Surface((cols * cell, height))
    surface.fill((30, 30, 40))
    pygame.font.init()
    font = pygame.font.Font(None, max(12, cell // 3))
    for r in range(rows):
        for c in range(cols):
            v = float(np.clip(values[r, c], 0.0, 1.0))
            colour = (255, int(255 * (1 - 0.8 * v)), int(255 * (1 - v)))
            rect = pygame.Rect(c * cell, strip + r * cell, cell, cell)
            pygame.draw.rect(surface, colour, rect)
            if not labels:
                continue
            pygame.draw.rect(surface, (190, 190, 190), rect, width=1)
            label = font.render(cell_label(v), True, (60, 60, 60))
            surface.blit(label, label.get_rect(center=rect.center))
    if marker is not None:
        r, c = marker
        centre = (c * cell + cell // 2, strip + r * cell + cell // 2)
        pygame.draw.circle(surface, (40, 90, 220), centre, cell // 3, width=3)
    if title:
        surface.blit(pygame.font.Font(None, 16).render(title, True, (235, 235, 235)), (4, 3))
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


def beside(left: np.ndarray, right: np.ndarray, pad: int = 4) -> np.ndarray:
    """Two frames side by side (the shorter padded below), ``pad`` dark pixels apart."""
    height = max(left.shape[0], right.shape[0])
    out = np.full((height, left.shape[1] + pad + right.shape[1], 3), 30, dtype=np.uint8)
    out[: left.shape[0], : left.shape[1]] = left
    out[: right.shape[0], left.shape[1] + pad :] = right
    return out
