"""combined's clear-object rule: a first foreground click on an empty neighbourhood takes the whole
object when its edge is clear, and changes nothing otherwise."""
import numpy as np
import pytest
from scipy import ndimage

from app.core.refine import CombinedRefiner, RefineRequest
from app.core.refine.clear_object import is_first_click_on_empty, region_contrast


def disk_slice(radius=28, step=150.0, seed=0, size=128):
    yy, xx = np.mgrid[:size, :size]
    disk = (yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius * radius
    rng = np.random.default_rng(seed)
    return (300 + step * disk + rng.normal(0, 20, disk.shape)).astype(np.float32), disk


def first_click(image, mask=None, point=(64, 64)):
    mask = np.zeros(image.shape, np.uint8) if mask is None else mask
    return RefineRequest(image=image, mask=mask, fg_clicks=[point], newest=point, newest_is_fg=True)


def test_the_contrast_is_the_step_in_noise_sds_and_zero_for_a_speck():
    image, disk = disk_slice(step=150.0)
    assert 6.0 < region_contrast(image, disk) < 9.0          # 150 / 20 = 7.5
    speck = np.zeros(disk.shape, bool)
    speck[10, 10] = True
    assert region_contrast(image, speck) == 0.0


def test_only_a_foreground_click_with_no_label_near_it_counts_as_a_first_click():
    mask = np.zeros((128, 128), np.uint8)
    assert is_first_click_on_empty(mask, (64, 64), True)
    assert not is_first_click_on_empty(mask, (64, 64), False)
    mask[64, 90] = 1                                           # 26 px away
    assert not is_first_click_on_empty(mask, (64, 64), True)
    assert is_first_click_on_empty(mask, (64, 20), True)       # 70 px away


@pytest.mark.parametrize("radius,step", [(8, 150.0), (28, 150.0), (28, 70.0)])
def test_one_click_takes_a_clear_disk_whole(radius, step):
    image, disk = disk_slice(radius=radius, step=step)
    result = CombinedRefiner().refine(first_click(image))
    out = result.mask > 0
    assert (out & disk).sum() >= 0.9 * disk.sum()
    assert (out & ~disk).sum() <= 0.02 * disk.sum()          # no rim from the smoothed cut
    assert not (ndimage.binary_fill_holes(out) & ~out).any()  # no noise holes from the trim
    y0, y1, x0, x1 = result.region                             # the region holds every change
    outside = np.ones(out.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert not out[outside].any()


def test_a_faint_object_or_a_click_near_the_label_is_left_to_the_network():
    faint, _ = disk_slice(radius=28, step=25.0)                # 1.25 noise SDs
    with_rule, without = CombinedRefiner(), CombinedRefiner(clear_contrast=None)
    request = first_click(faint)
    assert np.array_equal(with_rule.refine(request).mask, without.refine(request).mask)
    clear, disk = disk_slice(radius=28)
    mask = np.zeros(disk.shape, np.uint8)
    mask[60:69, 60:69] = 1                                     # the label already started
    request = first_click(clear, mask, point=(64, 80))
    assert np.array_equal(with_rule.refine(request).mask, without.refine(request).mask)
