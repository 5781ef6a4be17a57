"""The real sample photos that ship with scikit-image (no download needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# scikit-image's colour photographs, by the name of their loader in skimage.data.
SAMPLE_PHOTOS = (
    "astronaut",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "rocket",
    "hubble_deep_field",
    "moon",
    "grass",
    "brick",
    "gravel",
    "retina",
    "immunohistochemistry",
)


def sample_photos() -> dict[str, Image.Image]:
    """Name -> RGB photo for each scikit-image sample photo."""
    import skimage.data

    photos = {}
    for name in SAMPLE_PHOTOS:
        array = np.asarray(getattr(skimage.data, name)())
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        photos[name] = Image.fromarray(array[..., :3].astype(np.uint8))
    return photos


def write_sample_photos(folder: Path) -> list[Path]:
    """Save the sample photos as JPEG files in ``folder`` (for indexing them)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, photo in sample_photos().items():
        path = folder / f"{name}.jpg"
        if not path.is_file():
            photo.save(path, quality=92)
        paths.append(path)
    return paths
