"""The one image preprocessing function shared by training, evaluation, the CLI and the web app.

``prepare_image`` turns any image Pillow can open into the uint8 (C, H, W) array a
model takes: EXIF orientation applied, converted to RGB (or grayscale), resized to
the model's input size. Normalization happens later, with the statistics stored in
the checkpoint (:func:`fcnn.data.transforms.normalize`).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

__all__ = ["prepare_image"]


def prepare_image(img: Image.Image, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """EXIF-upright, RGB (``channels=3``) or gray (1), resized to ``size`` (H, W): (C, H, W) uint8.

    Large JPEGs are decoded at a reduced scale first (``Image.draft``), which is much
    faster than decoding the full image and shrinking it.
    """
    h, w = size
    if img.format == "JPEG":
        img.draft("RGB" if channels == 3 else "L", (w, h))  # decode at >= the target size
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16/32-bit gray: scale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        top = max(float(arr.max()), 1.0)
        img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8))
    mode = "RGB" if channels == 3 else "L"
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    img = img.convert(mode)
    if img.size != (w, h):
        img = img.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
