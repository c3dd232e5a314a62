"""Colour-dSprites, Noisy-dSprites and Scream-dSprites (Locatello et al. 2019), and dSprites
without the shape factor (disentanglement_lib's ``dsprites_noshape``).

The dSprites factor grid and sprites (procedural or the official file, see
:class:`DSprites`), turned into 3-channel observations exactly as
disentanglement_lib's ``ColorDSprites``, ``NoisyDSprites`` and ``ScreamDSprites``
do; the colour, noise and background patch are drawn from the caller's ``rng``
for every observation (they are noise, not factors), so a seed fixes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from disentangle.datasets.base import GroundTruthDataset
from disentangle.datasets.dsprites import FACTOR_NAMES, FACTOR_SIZES, NUM_IMAGES, DSprites
from disentangle.datasets.registry import register_dataset
from disentangle.base.errors import DisentangleError

SCREAM_URL = "https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg"


@register_dataset("dsprites_noshape")
class DSpritesNoShape(DSprites):
    """dSprites with four factors (scale, orientation, posX, posY): the shape is drawn uniformly
    from the caller's ``rng`` for every observation, noise rather than a factor, as in
    disentanglement_lib's ``dsprites_noshape`` (its ``DSprites([2, 3, 4, 5])``)."""

    factor_names = FACTOR_NAMES[1:]
    factor_sizes = FACTOR_SIZES[1:]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._row_of_index is None:
            return GroundTruthDataset.sample_factors(self, n, rng)
        self.complete_grid_needed(f"this dSprites file holds {len(self._present)} of {NUM_IMAGES} images")
        return super().sample_factors(n, rng)[:, 1:]  # an official file's subset: the factor rows it holds

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The sprites for ``factors`` [n, 4], each in a shape drawn from ``rng``: float32 [n, 1, 64, 64]."""
        if rng is None:
            raise DisentangleError(f"{self.name} observations need an rng (their shapes are random)")
        factors = self.check_factors(factors)
        return self.sprites(np.column_stack([rng.integers(0, FACTOR_SIZES[0], len(factors)), factors]))


class _ColouredDSprites(DSprites):
    observation_shape = (3, 64, 64)

    def sample_observations_from_factors(self, factors: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """The sprites for ``factors`` made 3-channel: float32 [n, 3, 64, 64] in [0, 1]."""
        if rng is None:
            raise DisentangleError(f"{self.name} observations need an rng (their colours are random)")
        masks = super().sample_observations_from_factors(factors, rng)
        return self.colour(np.repeat(masks, 3, axis=1), rng).astype(np.float32)

    def colour(self, sprites: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Binary sprites [n, 3, 64, 64] -> observations of the same shape."""
        raise NotImplementedError


@register_dataset("color_dsprites")
class ColorDSprites(_ColouredDSprites):
    """Each sprite in a random colour, every channel uniform in [0.5, 1], on black."""

    def colour(self, sprites, rng):
        return sprites * rng.uniform(0.5, 1.0, (len(sprites), 3, 1, 1))


@register_dataset("noisy_dsprites")
class NoisyDSprites(_ColouredDSprites):
    """White sprites on a background of uniform [0, 1] noise, per pixel and channel."""

    def colour(self, sprites, rng):
        return np.minimum(sprites + rng.uniform(0.0, 1.0, sprites.shape), 1.0)


@register_dataset("scream_dsprites")
class ScreamDSprites(_ColouredDSprites):
    """Sprites inverted into a random 64x64 patch of Munch's *The Scream*, the patch tinted
    by a random colour: ``background = (patch + u) / 2``, ``u ~ U[0, 1]^3``, and
    ``1 - background`` on the sprite. The image is the user's ``scream.jpg`` in the data
    root (or ``scream/scream.jpg`` there), shrunk to fit 350x274 as in the reference."""

    @classmethod
    def describe(cls) -> str:
        """One line, naming the image file it needs."""
        return super().describe() + "; needs scream.jpg"

    def __init__(self, root: str | Path | None = None, **options):
        super().__init__(root=root, **options)
        folder = Path(root) if root is not None else Path(".")
        candidates = [folder / "scream.jpg", folder / "scream" / "scream.jpg"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise DisentangleError(f"scream_dsprites needs the Scream image: put scream.jpg in {folder} (published at {SCREAM_URL})")
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                image.thumbnail((350, 274))
                self.scream = np.asarray(image, dtype=np.float64) / 255.0  # [H, W, 3]
        except OSError as error:
            raise DisentangleError(f"{path} is not a readable image ({error})") from None
        if min(self.scream.shape[:2]) <= 64:
            raise DisentangleError(f"{path}: the Scream image must be larger than 64x64 after shrinking, got {list(self.scream.shape[:2])}")

    def colour(self, sprites, rng):
        n = len(sprites)
        top = rng.integers(0, self.scream.shape[0] - 64, n)
        left = rng.integers(0, self.scream.shape[1] - 64, n)
        offsets = np.arange(64)
        patches = self.scream[(top[:, None] + offsets)[:, :, None], (left[:, None] + offsets)[:, None, :]]  # [n, 64, 64, 3]
        background = (patches + rng.uniform(0.0, 1.0, (n, 1, 1, 3))) / 2.0
        background = background.transpose(0, 3, 1, 2)
        return np.where(sprites == 1.0, 1.0 - background, background)
