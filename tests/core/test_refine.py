"""Refinement engines: seeds are honoured, clicks act locally, bad clicks give clear errors."""
import numpy as np
import pytest

from app.core.refine import (REFINERS, ClickOutsideImageError, RefineOptions, RefineRequest,
                             get_refiner)

SEEDED_ENGINES = ["geodesic-crf", "geodesic-nearest", "grabcut"]


def disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def phantom(seed=0):
    """Two bright disks (lesions) on darker tissue, raw CT-like numbers, mild noise."""
    shape = (160, 200)
    a = disk(shape, (80, 50), 18)
    b = disk(shape, (80, 155), 18)
    rng = np.random.default_rng(seed)
    image = 40.0 + 120.0 * (a | b) + rng.normal(0, 8.0, shape)
    return image.astype(np.float32), a, b


def dice(x, y):
    x, y = np.asarray(x, bool), np.asarray(y, bool)
    return 2 * (x & y).sum() / max(x.sum() + y.sum(), 1)


@pytest.mark.parametrize("engine", SEEDED_ENGINES)
def test_seed_pixels_end_on_their_side(engine):
    image, a, b = phantom()
    mask = a.astype(np.uint8)                    # a found, b missed
    fg_click, bg_click = (80, 150), (80, 50)     # fg inside b, bg right in the middle of a
    for clicks in (dict(fg_clicks=[fg_click], newest=fg_click),
                   dict(bg_clicks=[bg_click], newest=bg_click),
                   dict(fg_clicks=[fg_click], bg_clicks=[bg_click], newest=bg_click)):
        result = get_refiner(engine).refine(RefineRequest(image=image, mask=mask, **clicks))
        assert result.mask.dtype == np.uint8 and result.mask.shape == mask.shape
        if "fg_clicks" in clicks:
            assert result.mask[fg_click] == 1
        if "bg_clicks" in clicks:
            assert result.mask[bg_click] == 0


@pytest.mark.parametrize("engine", SEEDED_ENGINES + ["none"])
def test_a_click_changes_nothing_outside_its_region(engine):
    image, a, b = phantom()
    mask = (a | b).astype(np.uint8)
    click = (80, 50)                              # background click on lesion a
    result = get_refiner(engine).refine(RefineRequest(image=image, mask=mask, bg_clicks=[click],
                                                      newest=click))
    y0, y1, x0, x1 = result.region
    assert y0 <= click[0] <= y1 and x0 <= click[1] <= x1
    outside = np.ones(mask.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(result.mask[outside], mask[outside])
    # The region is bounded by the largest window the options allow, and lesion b is far away.
    limit = RefineOptions().window_max_mm
    assert (y1 - y0) <= 2 * limit + 2 and (x1 - x0) <= 2 * limit + 2
    assert np.array_equal(result.mask[b], mask[b])


def test_one_foreground_click_grows_a_missed_lesion_to_its_edge():
    image, a, b = phantom()
    mask = a.astype(np.uint8)
    result = get_refiner("geodesic-crf").refine(
        RefineRequest(image=image, mask=mask, fg_clicks=[(80, 155)], newest=(80, 155)))
    assert dice(result.mask & ~a, b) > 0.9        # b recovered, not a blob of the seed's size
    assert np.array_equal(result.mask[a], mask[a])


def test_one_background_click_removes_an_oversegmented_region_locally():
    image, a, b = phantom()
    leak = np.zeros(a.shape, bool)
    leak[95:125, 30:70] = True                    # a darker strip wrongly labelled, touching a
    mask = (a | leak | b).astype(np.uint8)
    click = (115, 50)
    result = get_refiner("geodesic-crf").refine(
        RefineRequest(image=image, mask=mask, bg_clicks=[click], newest=click))
    out = result.mask.astype(bool)
    assert (out & leak & ~a).sum() < 0.1 * (leak & ~a).sum()      # the leak is gone
    assert dice(out & ~b, a) > 0.95                               # lesion a kept
    assert np.array_equal(out[b], np.ones(b.sum(), bool))         # lesion b untouched


def test_background_click_on_flat_tissue_does_not_flip_a_similar_lesion_far_away():
    # The published WIA failure: with no spatial term the geodesic distance along flat tissue is
    # ~0, so one background click claimed a whole tumour of the same grey level.
    shape = (120, 120)
    lesion = disk(shape, (60, 40), 14)
    rng = np.random.default_rng(3)
    image = (100.0 + rng.normal(0, 3.0, shape)).astype(np.float32)   # no edge at all
    mask = lesion.astype(np.uint8)
    click = (60, 95)
    result = get_refiner("geodesic-crf").refine(
        RefineRequest(image=image, mask=mask, bg_clicks=[click], newest=click))
    assert result.mask[lesion].mean() > 0.95


def test_anisotropic_spacing_and_a_prior_are_accepted():
    image, a, b = phantom()
    prior = np.where(a | b, 0.8, 0.2).astype(np.float32)
    result = get_refiner("geodesic-crf").refine(
        RefineRequest(image=image, mask=a.astype(np.uint8), prior=prior, fg_clicks=[(80, 155)],
                      newest=(80, 155), spacing=(0.5, 1.0)))
    assert result.mask[80, 155] == 1 and result.mask[b].mean() > 0.8


def test_scribble_pixels_are_all_seeds():
    image, a, b = phantom()
    scribble = [(80, 140), (80, 170), (90, 160)]
    result = get_refiner("geodesic-crf").refine(
        RefineRequest(image=image, mask=np.zeros(a.shape, np.uint8), fg_scribbles=[scribble],
                      newest=(80, 170), newest_is_fg=True))
    assert result.mask[80, 140:171].all() and result.mask[85, 165] == 1


@pytest.mark.parametrize("where", [(-1, 10), (10, 200), (160, 3)])
def test_click_outside_the_image_is_a_clear_error(where):
    image, a, b = phantom()
    with pytest.raises(ClickOutsideImageError, match="outside the 160x200 slice"):
        get_refiner("geodesic-crf").refine(
            RefineRequest(image=image, mask=a.astype(np.uint8), fg_clicks=[where], newest=where))


def test_registry_and_bad_requests():
    assert {"geodesic-crf", "geodesic-nearest", "grabcut", "none"} <= set(REFINERS)
    with pytest.raises(ValueError, match="unknown refinement engine"):
        get_refiner("magic")
    image, a, b = phantom()
    with pytest.raises(ValueError, match="at least one click"):
        get_refiner().refine(RefineRequest(image=image, mask=a.astype(np.uint8)))
    with pytest.raises(ValueError, match="mask shape"):
        get_refiner().refine(RefineRequest(image=image, mask=a[:10].astype(np.uint8),
                                           fg_clicks=[(5, 5)]))
