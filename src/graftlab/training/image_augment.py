"""Image augmentation for training batches: flips, small rotations, random resized crops, colour jitter.

Plain torch on the resized batch in [0, 1] (before normalisation): one ``affine_grid`` / ``grid_sample``
call does the rotation and crop of the whole batch, and the colour jitter is arithmetic. Every random
draw comes from the trainer's numpy generator, which is checkpointed, so a resumed run draws the same
augmentations. Only the trainer's training step calls this: validation and test images never change.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..core.config import ImageAugmentConfig

__all__ = ["augment_images", "GRAY_WEIGHTS"]

#: ITU-R 601 luma weights, for contrast and saturation
GRAY_WEIGHTS = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def _affine(n: int, chosen: np.ndarray, rng: np.random.Generator, cfg: ImageAugmentConfig) -> torch.Tensor:
    """(n, 2, 3) sampling matrices: output coordinates -> input coordinates, identity where not chosen.

    A crop keeping ``area`` of the image has side ``f = sqrt(area)``; its centre moves at most ``1 - f``
    (normalised coordinates), so it stays inside the image; the rotation turns it about its centre.
    """
    theta = np.zeros((n, 2, 3))
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    for i in np.flatnonzero(chosen):
        f = math.sqrt(rng.uniform(cfg.crop_scale, 1.0))
        a = math.radians(rng.uniform(-cfg.rotation, cfg.rotation))
        cx, cy = rng.uniform(-(1 - f), 1 - f, size=2) if f < 1 else (0.0, 0.0)
        theta[i] = [[f * math.cos(a), -f * math.sin(a), cx], [f * math.sin(a), f * math.cos(a), cy]]
    return torch.as_tensor(theta, dtype=torch.float32)


def _jitter(x: torch.Tensor, chosen: np.ndarray, rng: np.random.Generator, cfg: ImageAugmentConfig) -> torch.Tensor:
    """Brightness, contrast and saturation factors in [1 - j, 1 + j] per chosen image. x: (n, 3, h, w)."""
    n = len(x)

    def factors(j: float) -> torch.Tensor:
        f = np.ones(n)
        f[chosen] = rng.uniform(1 - j, 1 + j, size=int(chosen.sum()))
        return torch.as_tensor(f, dtype=x.dtype).view(n, 1, 1, 1)

    b, c, s = factors(cfg.brightness), factors(cfg.contrast), factors(cfg.saturation)
    x = x * b
    gray = (x * GRAY_WEIGHTS).sum(1, keepdim=True)  # (n, 1, h, w)
    mean = gray.mean(dim=(2, 3), keepdim=True)  # (n, 1, 1, 1)
    x = (x - mean) * c + mean
    gray = (x * GRAY_WEIGHTS).sum(1, keepdim=True)
    x = (x - gray) * s + gray
    return x.clamp_(0.0, 1.0)


def augment_images(pixels: torch.Tensor, rng: np.random.Generator, cfg: ImageAugmentConfig) -> torch.Tensor:
    """A randomly augmented copy of a batch of images in [0, 1], (n, 3, h, w); each image with probability ``cfg.p``."""
    n = len(pixels)
    chosen = rng.random(n) < cfg.p
    if not chosen.any():
        return pixels
    x = pixels.clone()
    flip = chosen & (rng.random(n) < cfg.hflip)
    if flip.any():
        idx = torch.as_tensor(np.flatnonzero(flip))
        x[idx] = x[idx].flip(-1)
    if cfg.rotation > 0 or cfg.crop_scale < 1:
        grid = F.affine_grid(_affine(n, chosen, rng, cfg), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if cfg.brightness > 0 or cfg.contrast > 0 or cfg.saturation > 0:
        x = _jitter(x, chosen, rng, cfg)
    return x
