"""Pictures of how a kernel's threads cover its output (used by notebook 07).

A kernel launched with ``grid`` blocks of ``block`` threads gives thread ``t`` of block
``b`` the global id ``g = b * block + t``; with a grid-stride loop that thread handles the
flat output indices ``g, g + grid*block, g + 2*grid*block, ...``.
"""

from __future__ import annotations

import numpy as np


def thread_map(shape, block: int, grid: int | None = None):
    """For every element of an output of ``shape``: (block id, thread id, loop round).

    Returns three int arrays of ``shape``. grid: number of blocks (default: enough for one
    thread per element, ``ceil(size / block)``).
    """
    size = int(np.prod(shape))
    grid = -(-size // block) if grid is None else grid
    idx = np.arange(size)
    gid = idx % (grid * block)               # the thread that owns this element
    rnd = idx // (grid * block)              # in which pass of its grid-stride loop
    return ((gid // block).reshape(shape), (gid % block).reshape(shape), rnd.reshape(shape))


def draw_thread_map(shape, block: int, grid: int | None = None, axes=None, title=None):
    """Draw a (K, C, PH, PW) output as K x C panels coloured by block, labelled t / round.

    Each cell shows ``thread id`` (and ``r<round>`` when a thread loops more than once).
    Returns the array of Axes.
    """
    import matplotlib.pyplot as plt  # noqa: PLC0415
    K, C, PH, PW = shape
    blocks, threads, rounds = thread_map(shape, block, grid)
    if axes is None:
        _, axes = plt.subplots(K, C, figsize=(1.0 + 0.55 * PW * C, 0.3 + 0.55 * PH * K),
                               squeeze=False)
    n_blocks = int(blocks.max()) + 1
    cmap = plt.get_cmap("tab10" if n_blocks <= 10 else "tab20")
    for k in range(K):
        for c in range(C):
            ax = axes[k, c]
            ax.imshow(blocks[k, c], cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5)
            for ph in range(PH):
                for pw in range(PW):
                    label = f"t{threads[k, c, ph, pw]}"
                    if rounds.max() > 0:
                        label += f"\nr{rounds[k, c, ph, pw]}"
                    ax.text(pw, ph, label, ha="center", va="center", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"k={k}, c={c}", fontsize=8)
    fig = axes[0, 0].figure
    title = title or f"output {tuple(shape)}: colour = block ({n_blocks} blocks of {block} threads)"
    fig.suptitle(title, fontsize=9)
    return axes
