"""The refinement runner delivers only the newest request's result."""
import threading
import time

import numpy as np

from app.core.refine import RefineRequest, Refiner
from app.core.refine.runner import RefineRunner


class Slow(Refiner):
    name = "slow"

    def _refine(self, request, checked):
        time.sleep(0.05)
        out = checked.mask.copy()
        out[checked.newest] = 1
        h, w = out.shape
        return out, (0, h, 0, w), {}


def request(y):
    return RefineRequest(image=np.zeros((8, 8), np.float32), mask=np.zeros((8, 8), np.uint8),
                         fg_clicks=[(y, 1)], newest=(y, 1))


def test_newer_click_supersedes_stale_results():
    runner = RefineRunner()
    delivered = []
    done = threading.Event()

    def callback(ticket, result, error):
        delivered.append((ticket, result, error))
        if ticket == 5:
            done.set()

    tickets = [runner.submit(Slow(), request(y), callback) for y in range(5)]
    assert done.wait(5.0)
    runner.shutdown()
    assert tickets == [1, 2, 3, 4, 5]
    assert [t for t, _, _ in delivered] == [5]           # 1 may have run, but was superseded
    _, result, error = delivered[0]
    assert error is None and result.mask[4, 1] == 1


def test_errors_reach_the_callback():
    runner = RefineRunner()
    got = []
    done = threading.Event()
    bad = RefineRequest(image=np.zeros((8, 8), np.float32), mask=np.zeros((8, 8), np.uint8),
                        fg_clicks=[(20, 1)], newest=(20, 1))
    runner.submit(Slow(), bad, lambda t, r, e: (got.append(e), done.set()))
    assert done.wait(5.0)
    runner.shutdown()
    assert "outside" in str(got[0])
