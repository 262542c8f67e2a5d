"""Recognizing inputs unlike the training data ("not a dermoscopy-like image").

Two checks, both fitted on data and stored in the checkpoint:

- **pixel check**: an image with almost no contrast (blank) or almost no colour
  (grayscale: documents, digits) is not a dermoscopy photo; thresholds are set below
  the lowest values of the training images;
- **feature check**: the Mahalanobis distance of the penultimate features to the
  nearest class mean (class-conditional Gaussians with a shared covariance, Lee et al.
  2018); the threshold is a high quantile of the validation images' distances.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

__all__ = ["OodDetector", "colour_and_contrast", "fit"]


def colour_and_contrast(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: pixel standard deviation and mean chroma (max−min over RGB), 0..255 scale."""
    x = images.astype(np.float32)
    contrast = x.reshape(x.shape[0], -1).std(axis=1)
    chroma = (x.max(axis=1) - x.min(axis=1)).reshape(x.shape[0], -1).mean(axis=1)
    return contrast, chroma


@attrs.frozen(eq=False)
class OodDetector:
    """Out-of-distribution checks of a photo, each answering ``"not_skin"``: the squared
    Mahalanobis distance of its features to the nearest class mean (over ``threshold``: unlike
    the training data), and its contrast and colour (under ``min_contrast`` or
    ``min_chroma``: not a photo of skin)."""

    means: np.ndarray  # (K, D) class means of the features
    precision: np.ndarray  # (D, D) inverse of the shared covariance
    threshold: float  # feature distances above it are out of distribution
    min_contrast: float
    min_chroma: float

    def distances(self, feats: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each feature row to its nearest class mean."""
        diff = feats[:, None, :] - self.means[None, :, :]  # (N, K, D)
        d2 = np.einsum("nkd,de,nke->nk", diff, self.precision, diff)
        return d2.min(axis=1)

    def reasons(self, images: np.ndarray, feats: np.ndarray) -> list[str | None]:
        """Per image: ``"not_skin"`` when a check fails, else None."""
        contrast, chroma = colour_and_contrast(images)
        far = self.distances(feats) > self.threshold
        flat = (contrast < self.min_contrast) | (chroma < self.min_chroma)
        return ["not_skin" if f or d else None for f, d in zip(flat, far, strict=True)]

    def to_manifest(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON fields and arrays, to store in a checkpoint."""
        scalars = {
            "threshold": self.threshold,
            "min_contrast": self.min_contrast,
            "min_chroma": self.min_chroma,
        }
        return scalars, {"means": self.means, "precision": self.precision}

    @classmethod
    def from_manifest(cls, scalars: dict[str, Any], arrays: dict[str, np.ndarray]) -> OodDetector:
        return cls(
            arrays["means"],
            arrays["precision"],
            float(scalars["threshold"]),
            float(scalars["min_contrast"]),
            float(scalars["min_chroma"]),
        )


def fit(
    train_feats: np.ndarray,
    train_labels: np.ndarray,
    train_images: np.ndarray,
    val_feats: np.ndarray,
    quantile: float = 0.95,
    num_classes: int | None = None,
) -> OodDetector:
    """Fit both checks: class means and shared covariance on training features, the
    distance threshold at ``quantile`` of the validation distances, pixel thresholds at
    half the 0.5th percentile of the training images' contrast and chroma."""
    k = int(train_labels.max()) + 1 if num_classes is None else num_classes
    feats = train_feats.astype(np.float64)
    d = feats.shape[1]
    means = np.zeros((k, d))
    centered = np.empty_like(feats)
    for c in range(k):
        members = train_labels == c
        if members.any():
            means[c] = feats[members].mean(axis=0)
            centered[members] = feats[members] - means[c]
    cov = centered.T @ centered / max(len(feats) - k, 1)
    cov += np.eye(d) * (1e-3 * np.trace(cov) / d)  # shrinkage keeps it invertible
    precision = np.linalg.inv(cov)
    contrast, chroma = colour_and_contrast(train_images)
    det = OodDetector(
        means,
        precision,
        0.0,
        float(np.percentile(contrast, 0.5) / 2),
        float(np.percentile(chroma, 0.5) / 2),
    )
    threshold = float(np.quantile(det.distances(val_feats.astype(np.float64)), quantile))
    return attrs.evolve(det, threshold=threshold)
