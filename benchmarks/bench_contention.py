"""What a helper thread's CPU costs the estimator: DIS wall time per CPU-second of other work.

The ``run`` and ``pairs`` workers propagate, crop and pack on a helper thread while the estimator
computes the next flows (``dptrack_pipeline.schedule.StepOverlap``). If the estimator left a
core idle, that work would be free. This benchmark measures how much it really costs when DIS
runs on all the cores, in one process and one run (the machines are noisy):

1. DIS alone over ``--pairs`` consecutive pairs of real 720p video (grey frames in memory);
2. the same pairs while a helper thread repeats a fixed piece of work and sleeps 3 ms between
   pieces, for each kind of work: ``remap`` (four ``cv2.remap`` reads of a 256x256 grid on the
   flow, as a crop flow does) and ``numpy`` (``np.hypot`` over 512x512 float32);
3. for each, the helper's CPU time (``time.thread_time``) and the estimator's slowdown per
   helper CPU-second: 0 would mean the helper only used idle cycles, 0.5 a fair share of two
   cores, 1 that every helper cycle was taken from the estimator.

    python benchmarks/bench_contention.py [--pairs 40] [--threads T]

``--threads`` sets OpenCV's threads (default: OpenCV's, one per core).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "street_people_720p.avi"
PAUSE_S = 0.003
"""The helper sleeps this long between pieces of work, as the real helper waits between jobs."""


def read_grey(video: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of ``video`` in grey (uint8)."""
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    capture.release()
    if len(frames) < count:
        sys.exit(f"{video} has only {len(frames)} frames, need {count}")
    return frames


def time_dis(dis, frames: list[np.ndarray], work: Callable[[], None] | None) -> tuple[float, float]:
    """Wall seconds of DIS over consecutive pairs of ``frames``, with ``work`` repeated on a
    helper thread meanwhile (``None``: alone); and the helper's CPU seconds."""
    busy = [0.0]
    stop = threading.Event()

    def helper() -> None:
        while not stop.is_set():
            start = time.thread_time()
            work()
            busy[0] += time.thread_time() - start
            time.sleep(PAUSE_S)

    thread = threading.Thread(target=helper) if work is not None else None
    if thread is not None:
        thread.start()
    t0 = time.perf_counter()
    for a, b in zip(frames[:-1], frames[1:], strict=True):
        dis.calc(a, b, None)
    wall = time.perf_counter() - t0
    stop.set()
    if thread is not None:
        thread.join()
    return wall, busy[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None, help="OpenCV threads")
    args = parser.parse_args()
    if not args.video.exists():
        sys.exit(f"{args.video} not found: this benchmark reads ../shared/data")
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    frames = read_grey(args.video, args.pairs + 1)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(frames[0], frames[1], None)  # warm-up, and a real flow to read
    rng = np.random.default_rng(0)
    h, w = frames[0].shape
    grid = (rng.random((256, 256, 2)) * [w - 1, h - 1]).astype(np.float32)
    block = rng.random((512, 512)).astype(np.float32)

    def remap() -> None:
        for _ in range(4):
            cv2.remap(flow, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def hypot() -> None:
        np.hypot(block, block)

    alone, _ = time_dis(dis, frames, None)
    print(
        f"video: {args.video.name} {w}x{h}, {args.pairs} pairs, OpenCV threads: "
        f"{cv2.getNumThreads()}"
    )
    print(f"DIS alone        : {alone / args.pairs * 1e3:6.1f} ms/pair")
    for name, work in (("remap", remap), ("numpy", hypot)):
        wall, busy = time_dis(dis, frames, work)
        slowdown = (wall - alone) / busy if busy > 0 else float("nan")
        print(
            f"with {name:<6} helper: {wall / args.pairs * 1e3:6.1f} ms/pair, helper CPU "
            f"{busy:5.2f} s -> {slowdown:4.2f} s of DIS wall per helper CPU-second"
        )


if __name__ == "__main__":
    main()
