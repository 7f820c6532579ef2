"""Property: any sequence of clicks, scribbles, brush strokes, propagation, undo/redo and seed clearing, on any small
image, raises nothing but SegLoopError; undoing everything gives back the initial label bit for bit,
and redoing everything gives back the newest state."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import SegLoopError
from app.core.session import AnnotationSession
from app.core.volume import Volume

SHAPE = (5, 14, 17)
PLANES = {0: (14, 17), 1: (5, 17), 2: (5, 14)}
# Positions are fractions of the slice size, mapped when used; a few fall off it on purpose.
frac = st.one_of(st.floats(min_value=0, max_value=0.999), st.floats(min_value=0, max_value=0.999),
                 st.floats(min_value=0, max_value=0.999), st.floats(min_value=-0.03, max_value=1.03))
axis = st.integers(min_value=0, max_value=2)
index = frac
point = st.tuples(frac, frac)

action = st.one_of(
    st.tuples(st.just("click"), axis, index, point, st.booleans()),
    st.tuples(st.just("scribble"), axis, index, st.lists(point, min_size=1, max_size=4), st.booleans()),
    st.tuples(st.just("brush"), axis, index, st.lists(point, min_size=1, max_size=3),
              st.floats(min_value=0, max_value=4), st.booleans()),
    st.tuples(st.just("undo")),
    st.tuples(st.just("redo")),
    st.tuples(st.just("clear_seeds"), axis, index),
    st.tuples(st.just("value"), st.integers(min_value=1, max_value=3)),
    st.tuples(st.just("propagate"), axis, index),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 16), actions=st.lists(action, max_size=14),
       engine=st.sampled_from(["geodesic-nearest", "geodesic-crf"]))
def test_random_edit_sequences_are_safe_and_fully_undoable(seed, actions, engine):
    rng = np.random.default_rng(seed)
    image = rng.normal(100, 30, SHAPE).astype(np.float32)
    initial = rng.integers(0, 3, SHAPE).astype(np.uint8) * (rng.random(SHAPE) < 0.3)
    prior = rng.random(SHAPE).astype(np.float32) if seed % 2 else None
    volume = Volume(image, spacing=(1.0, 0.7, 2.5))
    s = AnnotationSession(volume, label=initial, prior=prior, engine=engine)
    def where(a, i):
        return a, int(np.floor(i * SHAPE[a]))

    def pts(a, points):
        h, w = PLANES[a]
        return [(int(np.floor(r * h)), int(np.floor(c * w))) for r, c in points]

    for act in actions:
        try:
            if act[0] == "click":
                s.click(*where(act[1], act[2]), pts(act[1], [act[3]])[0], act[4])
            elif act[0] == "scribble":
                s.scribble(*where(act[1], act[2]), pts(act[1], act[3]), act[4])
            elif act[0] == "brush":
                s.brush(*where(act[1], act[2]), pts(act[1], act[3]), act[4], erase=act[5])
            elif act[0] == "undo":
                s.undo()
            elif act[0] == "redo":
                s.redo()
            elif act[0] == "propagate":
                s.propagate(*where(act[1], act[2]))
            elif act[0] == "clear_seeds":
                s.clear_seeds(*where(act[1], act[2]))
            else:
                s.set_active_value(act[1])
        except SegLoopError:
            pass
        assert s.label.dtype == np.uint8 and s.label.shape == SHAPE
        assert s.checksum == AnnotationSession(volume, label=s.label, engine="none").checksum
    while s.redo() is not None:      # the newest state the history holds
        pass
    final, final_seeds = s.label.copy(), s.seeds.to_json()
    while s.undo() is not None:
        pass
    assert np.array_equal(s.label, initial)
    assert len(s.seeds) == 0
    while s.redo() is not None:
        pass
    assert np.array_equal(s.label, final)
    assert s.seeds.to_json() == final_seeds
