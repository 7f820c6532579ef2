"""correction-net and combined: seeds honoured, nothing changed outside the region, sane output."""
import numpy as np
import pytest

from app.core.refine import REFINERS, RefineRequest, get_refiner

ENGINES = ["correction-net", "combined"]


def scene(seed=0):
    yy, xx = np.mgrid[:96, :96]
    truth = (yy - 48) ** 2 + (xx - 48) ** 2 <= 18 ** 2
    rng = np.random.default_rng(seed)
    image = (100 + 300 * truth + rng.normal(0, 20, truth.shape)).astype(np.float32)
    return image, truth


def dice(a, b):
    return 2 * (a & b).sum() / max(a.sum() + b.sum(), 1)


def test_both_engines_are_registered():
    assert set(ENGINES) <= set(REFINERS)


@pytest.mark.parametrize("engine", ENGINES)
def test_seeds_honoured_and_nothing_changes_outside_the_region(engine):
    image, truth = scene()
    mask = truth.copy()
    mask[30:48, 30:66] = False                  # the top of the disk is missing
    mask[85:90, 5:10] = True                    # a scrap far away, outside any 64-px patch
    request = RefineRequest(image=image, mask=mask.astype(np.uint8), fg_clicks=[(38, 48)],
                            bg_clicks=[(70, 20)], newest=(38, 48), newest_is_fg=True)
    result = get_refiner(engine).refine(request)
    out = result.mask
    assert out.shape == image.shape and out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
    assert out[38, 48] == 1 and out[70, 20] == 0
    y0, y1, x0, x1 = result.region
    outside = np.ones(out.shape, bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], mask[outside].astype(np.uint8))
    assert out[85:90, 5:10].all()               # the far scrap is not the click's business
    if engine == "combined":                    # the graph cut keeps the net to image edges
        assert dice(out.astype(bool), truth) > dice(mask, truth) + 0.1


@pytest.mark.parametrize("engine", ENGINES)
def test_background_click_at_the_slice_corner(engine):
    image, truth = scene(1)
    mask = truth.copy()
    mask[0:6, 0:6] = True                       # a false blob in the corner
    request = RefineRequest(image=image, mask=mask.astype(np.uint8), bg_clicks=[(1, 1)],
                            newest=(1, 1), newest_is_fg=False)
    result = get_refiner(engine).refine(request)
    assert result.mask[1, 1] == 0
    assert result.mask[30:66, 30:66].sum() >= 0.95 * truth[30:66, 30:66].sum()



def test_a_prior_the_click_contradicts_is_discounted_by_how_wrong_it_was():
    from app.core.refine.combined import discounted_prior

    prior = np.array([[0.98, 0.9], [0.1, 0.5]], np.float32)
    # background click where the prior said 0.98: trust 2 x 0.02, nearly neutral everywhere
    out = discounted_prior(prior, (0, 0), False)
    np.testing.assert_allclose(out, 0.5 + (prior - 0.5) * 0.04, atol=1e-6)
    # background click where it said 0.1 (agreed): unchanged
    np.testing.assert_array_equal(discounted_prior(prior, (1, 0), False), prior)
    # foreground click on the 0.5 pixel: half agreement is full trust
    np.testing.assert_array_equal(discounted_prior(prior, (1, 1), True), prior)
    # foreground click where it said 0.1: trust 0.2
    np.testing.assert_allclose(discounted_prior(prior, (1, 0), True), 0.5 + (prior - 0.5) * 0.2,
                               atol=1e-6)

