"""Latent formats as data (ComfyUI's comfy/latent_formats.py): channels, scale, shift, packing and
the preview projection of each."""

from __future__ import annotations

import dataclasses

from .base import LatentFormat, PreviewData

SD15 = LatentFormat(
    "sd15", channels=4, scale=0.18215,
    preview=PreviewData(
        ((0.3512, 0.2297, 0.3227), (0.325, 0.4974, 0.235), (-0.2829, 0.1762, 0.2721), (-0.212, -0.2616, -0.7177)),
        (0.0, 0.0, 0.0), "madebyollin/taesd"),
)

SDXL = LatentFormat(
    "sdxl", channels=4, scale=0.13025,
    preview=PreviewData(
        ((0.3651, 0.4232, 0.4341), (-0.2533, -0.0042, 0.1068), (0.1076, 0.1111, -0.0362), (-0.3165, -0.2492, -0.2188)),
        (0.1084, -0.0175, -0.0011), "madebyollin/taesdxl"),
)

SD3 = LatentFormat(
    "sd3", channels=16, scale=1.5305, shift=0.0609,
    preview=PreviewData(
        ((-0.0922, -0.0175, 0.0749), (0.0311, 0.0633, 0.0954), (0.1994, 0.0927, 0.0458), (0.0856, 0.0339, 0.0902),
         (0.0587, 0.0272, -0.0496), (-0.0006, 0.1104, 0.0309), (0.0978, 0.0306, 0.0427), (-0.0042, 0.1038, 0.1358),
         (-0.0194, 0.002, 0.0669), (-0.0488, 0.013, -0.0268), (0.0922, 0.0988, 0.0951), (-0.0278, 0.0524, -0.0542),
         (0.0332, 0.0456, 0.0895), (-0.0069, -0.003, -0.081), (-0.0596, -0.0465, -0.0293),
         (-0.1448, -0.1463, -0.1189)),
        (0.2394, 0.2135, 0.1925), "madebyollin/taesd3"),
)

FLUX = LatentFormat(
    "flux", channels=16, scale=0.3611, shift=0.1159, layout="flux",
    preview=PreviewData(
        ((-0.0346, 0.0244, 0.0681), (0.0034, 0.021, 0.0687), (0.0275, -0.0668, -0.0433), (-0.0174, 0.016, 0.0617),
         (0.0859, 0.0721, 0.0329), (0.0004, 0.0383, 0.0115), (0.0405, 0.0861, 0.0915), (-0.0236, -0.0185, -0.0259),
         (-0.0245, 0.025, 0.118), (0.1008, 0.0755, -0.0421), (-0.0515, 0.0201, 0.0011), (0.0428, -0.0012, -0.0036),
         (0.0817, 0.0765, 0.0749), (-0.1264, -0.0522, -0.1103), (-0.028, -0.0881, -0.0499),
         (-0.1262, -0.0982, -0.0778)),
        (-0.0329, -0.0718, -0.0851), "madebyollin/taef1"),
)

# Z-Image decodes with FLUX's VAE, but its transformer patchifies the latents itself: a grid.
ZIMAGE = dataclasses.replace(FLUX, name="zimage", layout="grid")

LATENT_FORMATS = {f.name: f for f in (SD15, SDXL, SD3, FLUX, ZIMAGE)}
