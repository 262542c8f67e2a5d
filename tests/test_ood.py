import numpy as np

from fcnn import ood
from fcnn import random as fr


def _colourful(n, rng):
    base = rng.integers(60, 200, (n, 3, 1, 1))
    base[:, 0] += 50  # reddish, like skin
    return np.clip(base + rng.integers(-30, 30, (n, 3, 8, 8)), 0, 255).astype(np.uint8)


def test_feature_distance_and_pixel_checks():
    rng = fr.generator(fr.key(0))
    means = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    labels = np.arange(400) % 2
    train = means[labels] + rng.standard_normal((400, 3))
    val = means[np.arange(200) % 2] + rng.standard_normal((200, 3))
    images = _colourful(400, rng)
    det = ood.fit(train, labels, images, val, quantile=0.95, num_classes=2)
    assert np.mean(det.distances(val) > det.threshold) <= 0.06
    far = np.array([[40.0, 40.0, 40.0]])
    near = np.array([[5.0, 0.5, 0.0]])
    blank = np.full((1, 3, 8, 8), 128, np.uint8)
    gray = np.repeat(rng.integers(0, 255, (1, 1, 8, 8)), 3, axis=1).astype(np.uint8)
    ok_image = _colourful(1, rng)
    assert det.reasons(ok_image, near) == [None]
    assert det.reasons(ok_image, far) == ["not_skin"]
    assert det.reasons(blank, near) == ["not_skin"]
    assert det.reasons(gray, near) == ["not_skin"]
    scalars, arrays = det.to_manifest()
    again = ood.OodDetector.from_manifest(scalars, arrays)
    np.testing.assert_allclose(again.distances(far), det.distances(far))
