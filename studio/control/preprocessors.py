"""ControlNet preprocessors: a picture -> the control map a ControlNet reads.

A registry, as A1111's ControlNet extension names them (`canny`, `tile_resample`, ...). The ones that
need no weights are pure functions on PIL images (numpy / scipy) and always available. The ones
that need a model (depth) load it through the Hub like every other model, with a clear message when
it is neither cached nor reachable; the others of that kind (normal, lineart, openpose, HED) come from
the `controlnet_aux` package when it is installed, and say so when it is not.

Every preprocessor gets the picture at its processor resolution (short side `resolution` pixels, as
A1111's "Preprocessor resolution") and two numbers whose meaning it declares (thresholds, sigma...);
`preprocess` then brings the map to the generation size with the unit's resize mode.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from ..errors import InvalidValue, ModelUnavailable, UnknownName
from ..images import resize
from ..validation import MAX_INPUT_PIXELS


@dataclass(frozen=True)
class Slider:
    """One of a preprocessor's two numbers (A1111's "Threshold A" / "Threshold B")."""

    label: str
    low: float
    high: float
    default: float


@dataclass(frozen=True)
class Preprocessor:
    name: str
    title: str
    run: Callable[[Image.Image, float, float, int], Image.Image]  # (picture, a, b, seed) -> map
    a: Slider | None = None
    b: Slider | None = None
    needs: str | None = None  # what it needs beyond the studio's own requirements, said when missing
    # What it costs, in megapixel-steps (the cost cap's unit) per megapixel of the picture it reads at
    # its processor resolution. A megapixel-step is ~0.3 s on the device the hosting estimates for
    # (families' gpu_s_per_mp_step); these run on the CPU while the job holds the device. Measured on
    # 2 CPU cores at 0.5 MP: shuffle 1.8 s/MP and worse as the picture grows (its blur's kernel grows
    # with the long side), canny 0.5 s/MP, blur and scribble 0.03, the rest a few ms. The model-based
    # ones run a network (not measured here: a guess between canny and shuffle).
    work: float = 0.05

    def check(self, a: float | None, b: float | None) -> tuple[float, float]:
        """Its two numbers, defaults filled in; a value out of range names the field."""
        values = []
        for field, slider, value in (("threshold_a", self.a, a), ("threshold_b", self.b, b)):
            if slider is None or value is None:
                values.append(slider.default if slider else 0.0)
                continue
            if not slider.low <= float(value) <= slider.high:
                raise InvalidValue(field, value, f"{slider.label} of {self.name}: {slider.low:g} to {slider.high:g}")
            values.append(float(value))
        return values[0], values[1]


def _grey(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32)


def _rgb(array: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).convert("RGB")


def canny_edges(grey: np.ndarray, low: float, high: float) -> np.ndarray:
    """Canny edges as OpenCV computes them for A1111 (3x3 Sobel, L1 gradient, no blur): non-maximum
    suppression across the gradient, then hysteresis (weak edges kept where they touch strong ones)."""
    from scipy import ndimage  # here: the field table imports this module; scipy takes 0.3 s

    gx, gy = ndimage.sobel(grey, axis=1), ndimage.sobel(grey, axis=0)
    magnitude = np.abs(gx) + np.abs(gy)
    angle = (np.rad2deg(np.arctan2(gy, gx)) + 180.0) % 180.0
    direction = np.digitize(angle, [22.5, 67.5, 112.5, 157.5]) % 4  # 0: -, 1: /, 2: |, 3: \
    padded = np.pad(magnitude, 1)
    h, w = magnitude.shape

    def shifted(dy: int, dx: int) -> np.ndarray:
        return padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]

    neighbours = {0: ((0, 1), (0, -1)), 1: ((-1, 1), (1, -1)), 2: ((1, 0), (-1, 0)), 3: ((1, 1), (-1, -1))}
    peak = np.zeros_like(magnitude, dtype=bool)
    for d, (first, second) in neighbours.items():
        here = direction == d
        peak |= here & (magnitude >= shifted(*first)) & (magnitude > shifted(*second))
    weak = peak & (magnitude >= low)
    labels, count = ndimage.label(weak, structure=np.ones((3, 3)))
    if count == 0:
        return np.zeros_like(magnitude, dtype=bool)
    strong_labels = np.unique(labels[peak & (magnitude >= high)])
    return np.isin(labels, strong_labels[strong_labels > 0])


def _canny(image: Image.Image, low: float, high: float, seed: int) -> Image.Image:
    if low > high:
        raise InvalidValue("threshold_a", low, f"at most threshold_b ({high:g}): the low threshold of canny")
    return _rgb(canny_edges(_grey(image), low, high) * 255.0)


def _tile(image: Image.Image, down: float, b: float, seed: int) -> Image.Image:
    """A1111's tile_resample: the picture shrunk by `down` and back: detail for the model to add."""
    shrunk = (max(1, round(image.width / down)), max(1, round(image.height / down)))
    small = image.resize(shrunk, Image.Resampling.BICUBIC)
    return small.resize(image.size, Image.Resampling.BICUBIC).convert("RGB")


def _blur(image: Image.Image, sigma: float, b: float, seed: int) -> Image.Image:
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(sigma))


def _recolor(image: Image.Image, gamma: float, b: float, seed: int) -> Image.Image:
    """Luminance only (recolor_luminance): the model paints the colours back."""
    grey = _grey(image) / 255.0
    return _rgb((grey ** gamma) * 255.0)


def _invert(image: Image.Image, a: float, b: float, seed: int) -> Image.Image:
    return ImageOps.invert(image.convert("RGB"))


def _scribble(image: Image.Image, threshold: float, b: float, seed: int) -> Image.Image:
    """A sketch (dark strokes on a light ground, as drawn in the page, or the reverse) -> white strokes
    on black, the way scribble ControlNets were trained."""
    from scipy import ndimage

    grey = _grey(image)
    lines = grey < threshold if np.median(grey) >= 128 else grey >= threshold
    return _rgb(ndimage.binary_dilation(lines) * 255.0)


def _shuffle(image: Image.Image, a: float, b: float, seed: int) -> Image.Image:
    """Content shuffle: the picture's pieces moved by a smooth random flow (seeded, so the same seed
    shuffles the same way), keeping its colours and textures but not its layout."""
    from scipy import ndimage

    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    scale = max(h, w) / 8
    flow = [ndimage.gaussian_filter(rng.standard_normal((h, w)), scale) for _ in range(2)]
    flow = [f / (np.abs(f).max() + 1e-8) * max(h, w) / 2 for f in flow]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    coords = [np.clip(ys + flow[0], 0, h - 1), np.clip(xs + flow[1], 0, w - 1)]
    return _rgb(np.stack([ndimage.map_coordinates(rgb[..., c], coords, order=1) for c in range(3)], axis=-1))


def _none(image: Image.Image, a: float, b: float, seed: int) -> Image.Image:
    return image.convert("RGB")


DEPTH_MODEL = "depth-anything/Depth-Anything-V2-Small-hf"


def _depth(image: Image.Image, a: float, b: float, seed: int) -> Image.Image:
    """Depth Anything V2 (transformers' depth-estimation): near is white."""
    from transformers import pipeline

    from ..hub import hub_or_cache

    estimate = hub_or_cache(f"the depth model {DEPTH_MODEL}", lambda local: pipeline(
        "depth-estimation", model=DEPTH_MODEL, model_kwargs={"local_files_only": local}))
    return estimate(image.convert("RGB"))["depth"].convert("RGB").resize(image.size)


def _aux(detector: str, checkpoint: str = "lllyasviel/Annotators") -> Callable[..., Image.Image]:
    """A detector of the controlnet_aux package (its weights from the Hub, cached after the first)."""
    def run(image: Image.Image, a: float, b: float, seed: int) -> Image.Image:
        if importlib.util.find_spec("controlnet_aux") is None:
            raise ModelUnavailable("this preprocessor needs the controlnet_aux package (pip install controlnet_aux); "
                                   "or give a ready-made control map with the preprocessor 'none'")
        import controlnet_aux

        from ..hub import hub_or_cache

        model = hub_or_cache(f"the {detector} weights ({checkpoint})",
                             lambda local: getattr(controlnet_aux, detector).from_pretrained(checkpoint))
        return model(image.convert("RGB"), output_type="pil").convert("RGB").resize(image.size)
    return run


PREPROCESSORS: dict[str, Preprocessor] = {p.name: p for p in (
    Preprocessor("none", "none (the picture is the control map)", _none, work=0.0),
    Preprocessor("canny", "Canny edges", _canny, Slider("Low threshold", 1, 255, 100),
                 Slider("High threshold", 1, 255, 200), work=2.0),
    Preprocessor("tile_resample", "Tile (resample)", _tile, Slider("Down sampling rate", 1, 8, 1)),
    Preprocessor("blur_gaussian", "Tile (Gaussian blur)", _blur, Slider("Sigma", 0.01, 64, 9), work=0.2),
    Preprocessor("recolor_luminance", "Recolor (luminance)", _recolor, Slider("Gamma", 0.1, 2, 1)),
    Preprocessor("invert", "Invert (white ground, black lines)", _invert),
    Preprocessor("scribble", "Scribble (a drawn sketch)", _scribble, Slider("Threshold", 1, 254, 128), work=0.2),
    Preprocessor("shuffle", "Content shuffle", _shuffle, work=25.0),
    Preprocessor("depth_anything_v2", "Depth (Depth Anything V2)", _depth, needs=f"the {DEPTH_MODEL} weights", work=10.0),
    Preprocessor("normal_bae", "Normal map (BAE)", _aux("NormalBaeDetector"), needs="controlnet_aux", work=10.0),
    Preprocessor("lineart_realistic", "Lineart", _aux("LineartDetector"), needs="controlnet_aux", work=10.0),
    Preprocessor("openpose", "OpenPose", _aux("OpenposeDetector"), needs="controlnet_aux", work=10.0),
    Preprocessor("softedge_hed", "Soft edge (HED)", _aux("HEDdetector"), needs="controlnet_aux", work=10.0),
)}
DEFAULT_RESOLUTION = 512  # A1111's "Preprocessor resolution"
RESOLUTION_RANGE = (64, 2048)  # pixels of the picture a preprocessor reads
# The resize to the processor resolution scales the short side: a few-KB PNG of 8 x 65536 pixels at
# 512 would be 512 x 4 million. A ControlNet picture is a photo, a sketch or a pose, never a strip: one
# longer than 8 times its width is refused (and the picture as read is at most MAX_INPUT_PIXELS).
MAX_ASPECT = 8


def find(name: str) -> Preprocessor:
    if name not in PREPROCESSORS:
        raise UnknownName("module", name, list(PREPROCESSORS))
    return PREPROCESSORS[name]


def resolution_size(picture: tuple[int, int], resolution: int) -> tuple[int, int]:
    """(width, height) of a picture of size `picture` with its short side at `resolution` (multiples of 8)."""
    scale = resolution / min(picture)
    return tuple(max(8, 8 * round(v * scale / 8)) for v in picture)  # type: ignore[return-value]


def at_resolution(image: Image.Image, resolution: int) -> Image.Image:
    """The picture with its short side at `resolution` pixels (multiples of 8), as A1111 feeds its
    preprocessors."""
    return image.convert("RGB").resize(resolution_size(image.size, resolution), Image.Resampling.LANCZOS)


def pixel_perfect(image: Image.Image, size: tuple[int, int], mode: str) -> int:
    """A1111's "Pixel Perfect": the processor resolution at which the map lands on the generation size
    without resampling (its short side after the resize mode fits the picture)."""
    return pixel_perfect_res(image.size, size, mode)


def pixel_perfect_res(picture: tuple[int, int], size: tuple[int, int], mode: str) -> int:
    """`pixel_perfect` from the picture's (width, height) alone."""
    width, height = size
    scales = (height / picture[1], width / picture[0])
    scale = min(scales) if mode == "Resize and fill" else max(scales)
    return max(64, round(scale * min(picture)))


def read_size(picture: tuple[int, int], module: str, size: tuple[int, int], resize_mode: str,
              resolution: int | None, where: str = "") -> tuple[int, tuple[int, int]]:
    """The processor resolution and the (width, height) the preprocessor reads a picture of size
    `picture` at, from the sizes alone (nothing resized or allocated): a picture beyond MAX_ASPECT,
    or one read at more than MAX_INPUT_PIXELS, is refused, naming `where`.image (`where`: the unit,
    as controlnets[0])."""
    prefix = f"{where}." if where else ""
    width, height = picture
    if max(picture) > MAX_ASPECT * min(picture):
        raise InvalidValue(f"{prefix}image", f"{width}x{height}",
                           f"a picture at most {MAX_ASPECT} times as long as it is wide (it is resized by its "
                           "short side to the preprocessor resolution)")
    res = pixel_perfect_res(picture, size, resize_mode) if resolution is None else int(resolution)
    low, high = RESOLUTION_RANGE
    if not low <= res <= high:
        raise InvalidValue(f"{prefix}processor_res", res, f"{low} to {high} pixels")
    read = picture if module == "none" else resolution_size(picture, res)
    if read[0] * read[1] > MAX_INPUT_PIXELS:
        raise InvalidValue(f"{prefix}image", f"{width}x{height}",
                           f"a picture of at most {MAX_INPUT_PIXELS} pixels at the preprocessor resolution "
                           f"({res}: {read[0]}x{read[1]}): a lower resolution")
    return res, read


def work(picture: tuple[int, int], module: str, size: tuple[int, int], resize_mode: str,
         resolution: int | None) -> float:
    """What preprocessing a picture costs, in megapixel-steps: the megapixels the module reads x its
    weight (Preprocessor.work). A picture `read_size` refuses costs what it would have read
    (it never runs: it is refused first)."""
    pre = find(module)
    try:
        _, (w, h) = read_size(picture, module, size, resize_mode, resolution)
    except InvalidValue:
        res = DEFAULT_RESOLUTION if resolution is None else int(resolution)
        w, h = picture if module == "none" else resolution_size(picture, res)
    return pre.work * w * h / 1e6


def preprocess(image: Image.Image, module: str, size: tuple[int, int], resize_mode: str = "Crop and resize",
               resolution: int | None = DEFAULT_RESOLUTION, a: float | None = None, b: float | None = None,
               seed: int = 0, where: str = "") -> Image.Image:
    """The control map of `image` for a generation of `size` (width, height). `resolution` None:
    pixel perfect. The map is at the generation size, resized with the unit's resize mode. Its size
    is checked before anything is resized (`read_size`)."""
    pre = find(module)
    a, b = pre.check(a, b)
    res, _ = read_size(image.size, module, size, resize_mode, resolution, where)
    picture = image.convert("RGB") if module == "none" else at_resolution(image, res)
    return resize(pre.run(picture, a, b, seed), *size, resize_mode)
