"""Pixel work around img2img and inpainting, as pure functions on PIL images.

Resize modes and mask handling follow A1111's meanings: "Just resize" stretches, "Crop and resize"
fills the target and crops the overflow, "Resize and fill" fits inside and fills the borders from
the picture's own edges. Masks are white where the picture is to be repainted.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image, ImageFilter

LANCZOS = Image.Resampling.LANCZOS


def just_resize(image: Image.Image, width: int, height: int) -> Image.Image:
    return image.resize((width, height), LANCZOS)


def crop_and_resize(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover the target, then crop the centre: no borders, some of the picture lost."""
    scale = max(width / image.width, height / image.height)
    w, h = max(width, round(image.width * scale)), max(height, round(image.height * scale))
    resized = image.resize((w, h), LANCZOS)
    left, top = (w - width) // 2, (h - height) // 2
    return resized.crop((left, top, left + width, top + height))


def resize_and_fill(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to fit inside the target, centre it, and fill the borders by stretching its edges."""
    scale = min(width / image.width, height / image.height)
    w, h = max(1, round(image.width * scale)), max(1, round(image.height * scale))
    resized = image.resize((w, h), LANCZOS)
    canvas = resized.resize((width, height), LANCZOS).filter(ImageFilter.GaussianBlur(max(width, height) / 16))
    canvas.paste(resized, ((width - w) // 2, (height - h) // 2))
    return canvas


RESIZE_MODES: dict[str, Callable[[Image.Image, int, int], Image.Image]] = {
    "Just resize": just_resize,
    "Crop and resize": crop_and_resize,
    "Resize and fill": resize_and_fill,
}


def resize(image: Image.Image, width: int, height: int, mode: str) -> Image.Image:
    if image.size == (width, height):
        return image
    return RESIZE_MODES[mode](image, width, height)


def prepare_mask(mask: Image.Image, size: tuple[int, int], mode: str, invert: bool, blur: int) -> Image.Image:
    """The mask as 8-bit grey at the target size (resized like the picture), inverted for "Inpaint
    not masked", with its edge softened by a Gaussian blur of `blur` pixels."""
    grey = resize(mask_of(mask), *size, mode)
    if invert:
        grey = Image.eval(grey, lambda v: 255 - v)
    if blur > 0:
        grey = grey.filter(ImageFilter.GaussianBlur(blur))
    return grey


def mask_of(image: Image.Image) -> Image.Image:
    """A drawn mask as grey: an image editor's layer gives alpha where it was painted."""
    if image.mode in ("RGBA", "LA") or "transparency" in image.info:
        alpha = image.getchannel("A")
        if alpha.getextrema() != (255, 255):
            return alpha
    return image.convert("L")


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill": the masked area replaced by colours spread in from its surroundings.

    Normalised convolution: blur(picture x known) / blur(known), from wide to narrow radii, so every
    masked pixel gets the average colour of the nearest unmasked ones.
    """
    from scipy.ndimage import gaussian_filter  # here: the field table imports this module; scipy takes 0.3 s

    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    hole = np.asarray(mask, dtype=np.float32)[..., None] / 255.0
    known = 1.0 - hole
    filled = pixels.copy()
    for radius in (max(image.size) / 4, max(image.size) / 16, 8, 2):
        weight = gaussian_filter(known, sigma=(radius, radius, 0))
        estimate = gaussian_filter(pixels * known, sigma=(radius, radius, 0)) / np.maximum(weight, 1e-6)
        filled = np.where(weight > 1e-3, estimate, filled)
    out = pixels * known + filled * hole
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))


def composite(original: Image.Image, generated: Image.Image, mask: Image.Image) -> Image.Image:
    """The generated picture where the mask is white, the original elsewhere, blended on its edge."""
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), mask)


def masked_box(mask: Image.Image, padding: int, aspect: float) -> tuple[int, int, int, int] | None:
    """The region "Only masked" repaints: the mask's bounding box plus `padding` pixels, widened to
    the aspect ratio of the generation size and kept inside the picture. None for an empty mask."""
    box = mask.point(lambda v: 255 if v > 0 else 0).getbbox()
    if box is None:
        return None
    width, height = mask.size
    left, top, right, bottom = box[0] - padding, box[1] - padding, box[2] + padding, box[3] + padding
    w, h = right - left, bottom - top
    if w / h < aspect:  # too narrow: widen
        grow = aspect * h - w
        left, right = left - grow / 2, right + grow / 2
    else:  # too flat: heighten
        grow = w / aspect - h
        top, bottom = top - grow / 2, bottom + grow / 2
    # Shift back inside the picture, then clip what still overflows.
    left, right = _shift_inside(left, right, width)
    top, bottom = _shift_inside(top, bottom, height)
    return int(left), int(top), int(round(right)), int(round(bottom))


def _shift_inside(low: float, high: float, limit: int) -> tuple[float, float]:
    if high - low >= limit:
        return 0, limit
    if low < 0:
        low, high = 0, high - low
    if high > limit:
        low, high = low - (high - limit), limit
    return max(0, low), min(limit, high)
