"""The embedded default model: a tiny Qwen2 with a noisy-solver prior, built on the CPU.

``build_tiny()`` returns its folder (building it the first time, ~2.5 minutes on 2 cores);
``TINY_DATA`` is the problem distribution it was made for (``countdown.generate`` kwargs).
"""

from r1zero.tiny.build import (
    TINY_DATA,
    TINY_TEMPLATE,
    TinyRecipe,
    build_tiny,
    held_out,
    tiny_splits,
)

__all__ = ["TINY_DATA", "TINY_TEMPLATE", "TinyRecipe", "build_tiny", "held_out", "tiny_splits"]
