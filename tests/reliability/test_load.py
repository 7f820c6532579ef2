"""Load: 500 clicks in a row on one case without memory growth beyond a bound (measured in a fresh
interpreter for a clean heap), and a 100-case folder discovered, registered, scored and queued."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import SimpleITK as sitk

from app.core.active_learning import get_sampler, open_pool, queue, scoring_job, scoring_version
from app.core.active_learning.base import ScoringContext
from app.core.case_discovery import discover_cases
from app.core.case_store import CaseStore
from app.core.jobs import run_job
from tests.reliability.corpus import DATA, REPO

CLICKS = 500
# After 100 clicks the caches, the graph-cut worker link and the log are warm; 400 more clicks may
# add their undo records (a few KB each, box-local) but nothing proportional to the image.
GROWTH_BOUND_MB = 40.0

CHILD = r"""
import json, sys, time
sys.path.insert(0, {repo!r})

def rss_mb():
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def main():
    import numpy as np
    from app.core.session import AnnotationSession
    from app.core.volume_io import read_label, read_volume
    tmp, n = sys.argv[1], int(sys.argv[2])
    volume = read_volume({image!r})
    label = read_label({label!r}, volume).array
    session = AnnotationSession(volume, label=label, log_path=tmp + "/log.jsonl", autosave_dir=tmp + "/autosave")
    rng = np.random.default_rng(0)
    slices = np.nonzero(label.reshape(label.shape[0], -1).any(axis=1))[0]
    marks, start = {{}}, time.perf_counter()
    for k in range(n):
        z = int(rng.choice(slices))
        session.click(0, z, (int(rng.integers(0, volume.shape[1])), int(rng.integers(0, volume.shape[2]))),
                      bool(k % 2))
        if k + 1 in (100, n):
            marks[k + 1] = rss_mb()
    session.autosave.flush()
    print(json.dumps({{"rss": marks, "seconds": time.perf_counter() - start, "steps": session.step,
                      "engine": session.engine}}))
    session.close()

if __name__ == "__main__":
    main()
"""


def click_memory(tmp_path, clicks: int = CLICKS) -> dict:
    script = tmp_path / "clicks.py"
    script.write_text(CHILD.format(repo=str(REPO), image=str(DATA / "sts002_mr.nii.gz"),
                                   label=str(DATA / "sts002_mr_label.nii.gz")), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(tmp_path), str(clicks)], cwd=REPO,
                          capture_output=True, text=True, encoding="utf-8", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_500_clicks_on_one_case_keep_memory_flat(tmp_path):
    result = click_memory(tmp_path)
    assert result["steps"] == CLICKS and result["engine"] == "geodesic-crf"
    growth = result["rss"][str(CLICKS)] - result["rss"]["100"]
    print(f"RSS after 100 clicks {result['rss']['100']:.1f} MB, after {CLICKS} {result['rss'][str(CLICKS)]:.1f} MB "
          f"(growth {growth:.1f} MB); {result['seconds']:.1f} s for {CLICKS} clicks")
    assert growth < GROWTH_BOUND_MB, result
    log_lines = (tmp_path / "log.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(log_lines) == 1 + CLICKS                              # header + every click, durably


def make_folder(folder, n: int = 100) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(n):
        image = sitk.GetImageFromArray(rng.integers(0, 400, (3, 12, 12)).astype(np.int16))
        image.SetSpacing((1.0, 1.0, 2.5))
        sitk.WriteImage(image, str(folder / f"case{k:03d}.nii.gz"))


def queue_100_cases(folder, db) -> tuple[list, dict, float]:
    start = time.perf_counter()
    found = discover_cases(folder)
    with CaseStore(db) as store:
        store.add_cases(found)
        sampler = get_sampler("random")
        context = ScoringContext(seed=7)
        version = scoring_version(sampler, context)
        scores = run_job(scoring_job(store, sampler, open_pool(store), context, version=version))
        ordered = queue(store, sampler, version)
    return ordered, scores, time.perf_counter() - start


def test_a_100_case_folder_is_registered_scored_and_queued(tmp_path):
    make_folder(tmp_path / "cases")
    ordered, scores, seconds = queue_100_cases(tmp_path / "cases", tmp_path / "results" / "segloop.db")
    assert len(ordered) == len(scores) == 100
    values = [score for _, score in ordered]
    assert values == sorted(values, reverse=True) and len(set(values)) == 100
    assert {r.name for r, _ in ordered} == {f"case{k:03d}" for k in range(100)}
    print(f"100 cases discovered, registered, scored (random) and queued in {seconds:.2f} s")
    assert seconds < 120, f"a hang guard, not a speed claim: {seconds:.1f} s"
    # scoring again resumes from the store: same queue, nothing recomputed
    again, _, _ = queue_100_cases(tmp_path / "cases", tmp_path / "results" / "segloop.db")
    assert [r.id for r, _ in again] == [r.id for r, _ in ordered]


def test_the_gui_lists_a_100_case_folder(window, tmp_path):
    make_folder(tmp_path / "cases")
    before = len(window.case_list.case_ids())
    assert window.open_folder(tmp_path / "cases"), window.last_error
    assert len(window.case_list.case_ids()) == before + 100
    assert window.case is not None and window.case.name == "case000"
