"""Cost per pair of ``dptrack-build pairs`` on real 720p video, and the projection to MPII scale.

Measures, in one process and one run (the machines are noisy, so compare ratios):

1. ``estimator``: flows/s of the estimator alone on frames already decoded in memory, over the
   flows the ``direct`` pipeline computes (consecutive pairs of the video, T -> T±1..K);
2. for each mode (``direct``, ``chained``): the whole pipeline on the DirectRunner's in-process
   runner (count frames, decode, flows, forward-backward check, crops, crop flows, packing,
   Parquet/HDF5, manifest): wall time, pairs/s, flows computed, and the pipeline's flows/s over
   the estimator's (how much of the time is the estimator);
3. bytes per pair on disk, split into crops, flows and validity (HDF5 storage sizes) and the
   Parquet index; the direct-vs-chained flow difference on the same pairs (crop pixels);
4. a projection to the paper's job (1M frames, 5.8M pairs, 1280x720, K = 3, stride 1).

    python benchmarks/bench_pairs.py [--frames 60] [--crop-size 256] [--estimator dis]
        [--flownet2-ms 15] [--workers 8]

``--flownet2-ms`` is the assumed time of one FlowNet2 flow at 1280x720 on the projected GPU
(not measured here: this machine has no GPU); the projection prints the result for it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dptrack_pipeline.flow.registry import create_estimator  # noqa: E402
from dptrack_pipeline.frames import iter_video_frames  # noqa: E402
from dptrack_pipeline.pairs.config import PairsConfig  # noqa: E402
from dptrack_pipeline.pairs.plan import anchor_frames, flows_needed  # noqa: E402
from dptrack_pipeline.shards import DenseReader, read_dataset_info, read_pairs  # noqa: E402
from pipelines.pairs import run  # noqa: E402

DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "video" / "street_people_720p.avi"
PAPER_FRAMES = 1_000_000
PAPER_PAIRS = 5_800_000


def estimator_rate(video: Path, frames: int, max_offset: int, name: str) -> float:
    """Flows/s of the estimator alone over the direct pipeline's flows of the first frames."""
    images = [f for _, f in iter_video_frames(str(video), 0, frames)]
    pairs = sorted(flows_needed(anchor_frames(len(images), 1), len(images), max_offset, "direct"))
    estimator = create_estimator(name)
    estimator.setup()
    estimator.estimate_batch([(images[0], images[1])])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(pairs), 8):
        estimator.estimate_batch([(images[a], images[b]) for a, b in pairs[i : i + 8]])
    return len(pairs) / (time.perf_counter() - start)


def storage(out: Path) -> dict[str, float]:
    """Bytes on disk by kind: crops, flows, valid (HDF5 storage) and the Parquet index."""
    sizes = {"crops": 0, "flows": 0, "valid": 0, "index": 0, "total": 0}
    for path in out.iterdir():
        sizes["total"] += path.stat().st_size
        if path.suffix == ".h5":
            with h5py.File(path, "r") as fh:
                for name in ("crops", "flows", "valid"):
                    sizes[name] += fh[name].id.get_storage_size()
        elif path.name.startswith("pairs-"):
            sizes["index"] += path.stat().st_size
    return sizes


def build(video: Path, frames: int, mode: str, args: argparse.Namespace, root: Path) -> dict:
    clip = root / f"clip_{frames}"
    if not clip.exists():  # the first frames as a frame folder (PNG, lossless)
        import cv2

        clip.mkdir()
        for i, frame in iter_video_frames(str(video), 0, frames):
            cv2.imwrite(str(clip / f"{i:06d}.png"), frame[:, :, ::-1])
    out = root / f"out_{mode}"
    out.mkdir()
    config = PairsConfig(
        videos=(str(clip),),
        out=str(out),
        max_offset=args.offsets,
        crop_size=args.crop_size,
        mode=mode,
        estimator=args.estimator,
        num_shards=1,
    )
    start = time.perf_counter()
    run(config, ["--runner=FnApiRunner"])
    wall = time.perf_counter() - start
    counters = read_dataset_info(str(out))["counters"]
    return {"wall_s": wall, "counters": counters, "storage": storage(out), "out": out}


def flow_difference(direct: Path, chained: Path) -> dict[int, float]:
    """Mean end-point difference (crop px) between the modes' flows, on pixels valid in both."""
    rows_d = {(r["frame_a"], r["offset"]): r for r in read_pairs(str(direct)).to_pylist()}
    rows_c = {(r["frame_a"], r["offset"]): r for r in read_pairs(str(chained)).to_pylist()}
    diffs: dict[int, list[float]] = {}
    with DenseReader(str(direct)) as dd, DenseReader(str(chained)) as dc:
        for key, rd in rows_d.items():
            rc = rows_c.get(key)
            if rc is None:
                continue
            fd, vd = dd.flow(rd["dense_file"], rd["flow_index"])
            fc, vc = dc.flow(rc["dense_file"], rc["flow_index"])
            both = vd & vc
            if both.any():
                diff = np.linalg.norm(fd - fc, axis=-1)[both].mean()
                diffs.setdefault(abs(key[1]), []).append(float(diff))
    return {k: float(np.mean(v)) for k, v in sorted(diffs.items())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--offsets", type=int, default=3)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--estimator", default="dis")
    parser.add_argument("--flownet2-ms", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=8, help="GPU workers in the projection")
    args = parser.parse_args()
    if not args.video.exists():
        sys.exit(f"{args.video} not found (it is in ../shared/data)")

    rate = estimator_rate(args.video, args.frames, args.offsets, args.estimator)
    result: dict = {"frames": args.frames, "estimator": args.estimator, "estimator_flows_s": rate}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for mode in ("direct", "chained"):
            m = build(args.video, args.frames, mode, args, root)
            c = m["counters"]
            pairs = c["pairs_written"]
            result[mode] = {
                "wall_s": round(m["wall_s"], 2),
                "pairs": pairs,
                "flows": c["flows_computed"],
                "crops": c["crops_written"],
                "pairs_s": pairs / m["wall_s"],
                "flows_s": c["flows_computed"] / m["wall_s"],
                "estimator_share": (c["flows_computed"] / rate) / m["wall_s"],
                "bytes_per_pair": {k: v / pairs for k, v in m["storage"].items()},
            }
        result["direct_vs_chained_epe_crop_px"] = flow_difference(
            root / "out_direct", root / "out_chained"
        )

    d = result["direct"]
    bytes_pair = d["bytes_per_pair"]["total"]
    cpu_s_pair = (d["wall_s"] - d["flows"] / rate) / d["pairs"]  # everything but the estimator
    flows_direct = PAPER_PAIRS  # stride 1: one flow per pair
    flows_chained = 2 * PAPER_FRAMES
    gpu_h = {
        "direct": flows_direct * args.flownet2_ms / 1000 / 3600,
        "chained": flows_chained * args.flownet2_ms / 1000 / 3600,
    }
    result["projection"] = {
        "storage_TB": PAPER_PAIRS * bytes_pair / 1e12,
        "cpu_s_per_pair_besides_flow": cpu_s_pair,
        "cpu_core_hours": PAPER_PAIRS * cpu_s_pair / 3600,
        "gpu_hours": gpu_h,
        f"wall_hours_on_{args.workers}_gpu_workers": {
            k: v / args.workers for k, v in gpu_h.items()
        },
        "flownet2_ms_assumed": args.flownet2_ms,
    }
    print(json.dumps(result, indent=2, default=float))
    print()
    print("| mode | pairs | flows | wall s | pairs/s | estimator share | bytes/pair |")
    print("|---|---|---|---|---|---|---|")
    for mode in ("direct", "chained"):
        r = result[mode]
        print(
            f"| {mode} | {r['pairs']} | {r['flows']} | {r['wall_s']:.1f} | {r['pairs_s']:.2f} | "
            f"{r['estimator_share']:.2f} | {r['bytes_per_pair']['total'] / 1e3:.0f} kB |"
        )
    print(f"\nestimator alone: {rate:.2f} flows/s; rest: {cpu_s_pair * 1e3:.0f} ms/pair")
    tb = result["projection"]["storage_TB"]
    print(f"projected storage for {PAPER_PAIRS:,} pairs: {tb:.2f} TB")
    diff = result["direct_vs_chained_epe_crop_px"]
    print(f"direct-vs-chained mean flow difference by |k| (crop px): {diff}")


if __name__ == "__main__":
    main()
