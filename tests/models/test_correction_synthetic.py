"""Synthetic lesions for the correction net: inside the body, visible, one piece, the target."""
import numpy as np
from scipy import ndimage

from models.correction.synthetic import add_lesion, lesion_shape


def body_slice(size=160):
    yy, xx = np.mgrid[:size, :size]
    body = (yy - size / 2) ** 2 / 70 ** 2 + (xx - size / 2) ** 2 / 60 ** 2 <= 1
    rng = np.random.default_rng(0)
    return np.where(body, 0.5 + rng.normal(0, 0.02, body.shape), 0.0).astype(np.float32), body


def test_lesions_are_single_irregular_pieces_of_the_asked_size():
    rng = np.random.default_rng(1)
    for radius in (5.0, 20.0, 45.0):
        gt = lesion_shape((200, 200), (100, 100), radius, rng)
        assert ndimage.label(gt)[1] == 1
        area_radius = np.sqrt(gt.sum() / np.pi)
        assert 0.5 * radius < area_radius < 1.6 * radius


def test_a_lesion_lies_in_the_body_and_stands_out_from_it():
    image, body = body_slice()
    rng = np.random.default_rng(2)
    made = [add_lesion(image, rng) for _ in range(20)]
    made = [m for m in made if m is not None]
    assert len(made) >= 15
    for out, gt in made:
        assert out.shape == image.shape and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        core = ndimage.binary_erosion(gt, iterations=2)
        if core.sum() < 5:
            continue
        centre = tuple(int(round(c)) for c in ndimage.center_of_mass(gt))
        assert body[centre]                                       # centred inside the body
        step = abs(float(out[core].mean()) - 0.5)
        assert step > 0.05                                        # visible: 0.08-0.45 asked
        # outside the lesion's soft edge the slice is untouched
        far = ~ndimage.binary_dilation(gt, iterations=4)
        np.testing.assert_allclose(out[far], image[far], atol=2e-3)


def test_no_lesion_where_there_is_no_body():
    assert add_lesion(np.zeros((96, 96), np.float32), np.random.default_rng(0)) is None
