"""What a model upscale costs, in the cost cap's unit (megapixel-steps), known before anything loads.

A model upscaler runs its network once per pass on the pixels it is given (an ESRGAN x4 is 16.7M
parameters, nearly all at the input's size: about 2 x 16.7M FLOPs a pixel, 33 TFLOP a megapixel),
and A1111 repeats passes until the picture is as large as asked. The scale of a file is known only
once it is read, so the count assumes the smallest common one (x2), which passes most often: each pass
reads 4x the pixels of the one before. MODEL_PASS_WORK is what one input megapixel of a pass costs
against one SD 1.5 step of a megapixel (bench/upscalers.py measures both side by side).
"""

from __future__ import annotations

import math

MODEL_PASS_WORK = 8.0  # megapixel-steps per input megapixel of one model pass (ESRGAN-class; measured 8.2)
MAX_PASSES = 3  # as A1111: at most three passes of the model, then a resize to the size asked
ASSUMED_SCALE = 2


def passes(start: tuple[int, int], target: tuple[int, int], scale: int = ASSUMED_SCALE) -> int:
    """How many passes of a x`scale` model make `start` at least `target` (A1111's loop)."""
    ratio = max(target[0] / start[0], target[1] / start[1])
    if ratio <= 1:
        return 0
    return min(MAX_PASSES, math.ceil(math.log(ratio, scale) - 1e-9))


def model_work(start: tuple[int, int], target: tuple[int, int], scale: int = ASSUMED_SCALE) -> float:
    """Megapixel-steps of a model upscale from `start` to `target` pixels (each pass's input)."""
    pixels = start[0] * start[1] / 1e6
    return MODEL_PASS_WORK * sum(pixels * scale ** (2 * k) for k in range(passes(start, target, scale)))
