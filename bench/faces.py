"""Face benchmarks: 1:N identification latency, capture throughput, accuracy on real photos.

    .venv/bin/python bench/faces.py [--quick] [--sizes 10000,100000,1000000] [--probes 300]
                                    [--photos ../shared/fixtures/faces] [--seconds 20]
                                    [--skip identification,throughput,accuracy]

1. **Identification** (synthetic, dim 128): galleries of 10k, 100k and 1M vectors, two per
   identity (residents enroll a photo or two), made face-like: every identity is a common
   direction (norm 1.3, as dlib encodings are ~1.4 long) plus a spread calibrated so that two
   identities lie ~0.84 apart, every vector a sighting of it ~0.34 from another (the medians
   measured on the real photographs, ``SOURCES.md``). Probes are fresh sightings of enrolled
   identities. Times ``Gallery.search`` (exact, k=5) and ``AnnGallery.search`` (usearch HNSW,
   connectivity 16, expansion 128/64) per probe, p50/p99, the ANN build time, and recall@1 of
   the ANN against the exact answer. Each size is freed before the next.
2. **Capture throughput** on the real photographs: crops (each detected face with a 15 %
   margin, as a JPEG; ``encode_crop``: decode + encode, no detection) and 720p frames (each
   photo letterboxed into a 1280×720 JPEG; ``faces``: decode + HOG detection + encoding),
   in one process and in two worker processes (the machine's two cores).
3. **Accuracy** on the real photographs: enroll the first photo of each person, identify every
   other photo; rank-1 accuracy, misses and false matches at the threshold 0.6; then each
   person's photos against a gallery without them (every match there is a false match); and
   the distance distributions of same-person and different-person pairs.

``--quick`` runs 10k and 100k only, fewer probes and shorter throughput runs.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

if "--blas-threads" in sys.argv:  # must be set before numpy loads OpenBLAS
    os.environ["OPENBLAS_NUM_THREADS"] = sys.argv[sys.argv.index("--blas-threads") + 1]

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from anju.faces.encoder import DlibEncoder, decode_image, distance, dlib_encoder
from anju.faces.gallery import AnnGallery, Gallery

THRESHOLD = 0.6
DIM = 128
REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "fixtures" / "faces"
# Calibration (see the docstring): per-coordinate spreads giving the measured medians.
COMMON_NORM = 1.3
SIGHTING_SPREAD = 0.34 / np.sqrt(2 * DIM)  # two sightings of one identity: 0.34 apart
# Sightings of two identities: sqrt(centres² + 0.34²) apart, 0.84 in all.
IDENTITY_SPREAD = np.sqrt(0.84**2 - 0.34**2) / np.sqrt(2 * DIM)


def percentiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98]


# -- 1. identification ------------------------------------------------------------------------


def synthetic(
    rng: np.random.Generator, identities: int, per: int
) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Identity centres, the gallery's vectors (``per`` sightings each, identity-major) and a
    function drawing fresh sightings of given identities."""
    common = rng.normal(size=DIM)
    common = (common * COMMON_NORM / np.linalg.norm(common)).astype(np.float32)
    centres = np.empty((identities, DIM), dtype=np.float32)
    chunk = 100_000
    for start in range(0, identities, chunk):
        n = min(chunk, identities - start)
        centres[start : start + n] = common + rng.standard_normal(
            (n, DIM), dtype=np.float32
        ) * np.float32(IDENTITY_SPREAD)

    def sightings(ids: np.ndarray) -> np.ndarray:
        noise = rng.standard_normal((len(ids), DIM), dtype=np.float32)
        return centres[ids] + noise * np.float32(SIGHTING_SPREAD)

    vectors = np.empty((identities * per, DIM), dtype=np.float32)
    ids = np.repeat(np.arange(identities), per)
    for start in range(0, len(ids), chunk):
        vectors[start : start + chunk] = sightings(ids[start : start + chunk])
    return centres, vectors, sightings


def identification(args: argparse.Namespace) -> None:
    print("\n== Identification: probe latency (dim 128, k=5, two vectors per identity) ==")
    per = 2
    for size in args.sizes:
        rng = np.random.default_rng(size)
        identities = size // per
        _, vectors, sightings = synthetic(rng, identities, per)
        owners = [f"p:{i}" for i in range(identities) for _ in range(per)]
        probe_ids = rng.integers(identities, size=args.probes)
        probes = sightings(probe_ids)
        if size == args.sizes[0]:
            sample = rng.integers(identities, size=2000)
            same = np.linalg.norm(vectors[sample * per] - vectors[sample * per + 1], axis=1)
            other = np.linalg.norm(
                vectors[sample * per] - vectors[np.roll(sample, 1) * per], axis=1
            )
            norm = np.linalg.norm(vectors[:1000], axis=1).mean()
            print(
                f"  synthetic data: vector norm ~{norm:.2f}; "
                f"same identity median {np.median(same):.2f}, different {np.median(other):.2f} "
                f"(real photographs: 0.34 / 0.84)"
            )

        exact = Gallery(DIM)
        t0 = time.perf_counter()
        exact.add_many(owners, vectors)
        load = time.perf_counter() - t0
        for p in probes[:5]:
            exact.search(p, 5)  # warm-up
        times, exact_top = [], []
        for p in probes:
            t = time.perf_counter()
            found = exact.search(p, 5)
            times.append((time.perf_counter() - t) * 1000)
            exact_top.append(found[0].owner)
        p50, p99 = percentiles(times)
        correct = np.mean([top == f"p:{i}" for top, i in zip(exact_top, probe_ids, strict=True)])
        print(
            f"  {size:>9,} exact: p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
            f"(loaded in {load:.1f} s; right identity first {correct:.1%})"
        )
        del exact
        gc.collect()

        if size > args.ann_max:
            print(f"  {size:>9,} ANN:   skipped (--ann-max {args.ann_max:,})")
        else:
            ann = AnnGallery(DIM)
            t0 = time.perf_counter()
            ann.add_many(owners, vectors)
            build = time.perf_counter() - t0
            print(f"  {size:>9,} ANN:   built in {build:.0f} s (connectivity 16, expansion_add 64)")
            for expansion in args.expansions:
                ann.expansion_search = expansion
                for p in probes[:5]:
                    ann.search(p, 5)
                times, hits = [], 0
                for p, top in zip(probes, exact_top, strict=True):
                    t = time.perf_counter()
                    found = ann.search(p, 5)
                    times.append((time.perf_counter() - t) * 1000)
                    hits += bool(found) and found[0].owner == top
                p50, p99 = percentiles(times)
                print(
                    f"  {size:>9,} ANN:   expansion_search {expansion:>3}: p50 {p50:7.2f} ms  "
                    f"p99 {p99:7.2f} ms  recall@1 vs exact {hits / len(probes):.1%}"
                )
            del ann
        del vectors, owners, probes, sightings
        gc.collect()


# -- 2. capture throughput --------------------------------------------------------------------


def photographs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*/*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def as_jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=90)
    return out.getvalue()


def crops_and_frames(paths: list[Path]) -> tuple[list[bytes], list[bytes], int]:
    """Face crops (15 % margin) and 1280×720 letterboxed frames of the photographs."""
    crops, frames, faces_in_frames = [], [], 0
    encoder = dlib_encoder()
    for path in paths:
        data = path.read_bytes()
        rgb = decode_image(data)
        for face in encoder.faces(data):
            b = face.box
            mh, mw = (b.bottom - b.top) * 0.15, (b.right - b.left) * 0.15
            top, left = max(0, int(b.top - mh)), max(0, int(b.left - mw))
            crops.append(
                as_jpeg(
                    np.ascontiguousarray(rgb[top : int(b.bottom + mh), left : int(b.right + mw)])
                )
            )
        img = Image.fromarray(rgb)
        img.thumbnail((1280, 720))
        canvas = Image.new("RGB", (1280, 720))
        canvas.paste(img, ((1280 - img.width) // 2, (720 - img.height) // 2))
        frame = as_jpeg(np.asarray(canvas))
        frames.append(frame)
        faces_in_frames += len(encoder.faces(frame))
    return crops, frames, faces_in_frames


_worker_encoder: DlibEncoder | None = None


def _worker_init(upsample: int) -> None:
    global _worker_encoder
    _worker_encoder = DlibEncoder(upsample=upsample)


def _worker(job: tuple[str, bytes]) -> int:
    assert _worker_encoder is not None
    kind, data = job
    if kind == "crop":
        _worker_encoder.encode_crop(data)
        return 1
    return len(_worker_encoder.faces(data))


def run_for(
    seconds: float, items: list[bytes], call: Callable[[bytes], int]
) -> tuple[int, int, float]:
    """Call on the items round and round for about ``seconds``: (calls, faces, elapsed)."""
    calls = faces = 0
    t0 = time.perf_counter()
    while True:
        for item in items:
            faces += call(item)
            calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return calls, faces, elapsed


def run_pool(
    seconds: float, kind: str, items: list[bytes], upsample: int
) -> tuple[int, int, float]:
    with ProcessPoolExecutor(2, initializer=_worker_init, initargs=(upsample,)) as pool:
        list(pool.map(_worker, [(kind, items[0])] * 4))  # load the models in both workers
        calls = faces = 0
        t0 = time.perf_counter()
        while True:
            faces += sum(pool.map(_worker, [(kind, d) for d in items]))
            calls += len(items)
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                return calls, faces, elapsed


def throughput(args: argparse.Namespace) -> None:
    print("\n== Capture throughput (real photographs) ==")
    paths = photographs(args.photos)
    crops, frames, faces_in_frames = crops_and_frames(paths)
    print(
        f"  {len(crops)} face crops (15 % margin, JPEG), {len(frames)} frames of 1280×720 "
        f"({faces_in_frames} faces found in them)"
    )
    encoder = dlib_encoder()

    def crop(d: bytes) -> int:
        encoder.encode_crop(d)
        return 1

    calls, _, elapsed = run_for(args.seconds, crops, crop)
    print(
        f"  crops, encode only, 1 process:    {calls / elapsed:6.1f} faces/s  "
        f"({elapsed / calls * 1000:.0f} ms a face)"
    )
    calls, _, elapsed = run_pool(args.seconds, "crop", crops, 1)
    print(f"  crops, encode only, 2 processes:  {calls / elapsed:6.1f} faces/s")
    for upsample in (1, 0):
        enc = DlibEncoder(upsample=upsample)
        calls, faces, elapsed = run_for(args.seconds, frames, lambda d, e=enc: len(e.faces(d)))
        print(
            f"  720p frames, detect + encode (upsample {upsample}), 1 process: "
            f"{calls / elapsed:5.2f} frames/s, {faces / elapsed:5.2f} faces/s "
            f"({elapsed / calls * 1000:.0f} ms a frame, {faces / calls:.2f} faces a frame)"
        )
        calls, faces, elapsed = run_pool(args.seconds, "frame", frames, upsample)
        print(
            f"  720p frames, detect + encode (upsample {upsample}), 2 processes: "
            f"{calls / elapsed:5.2f} frames/s, {faces / elapsed:5.2f} faces/s"
        )


# -- 3. accuracy ------------------------------------------------------------------------------


def accuracy(args: argparse.Namespace) -> None:
    print(f"\n== Accuracy on the real photographs (threshold {THRESHOLD}) ==")
    encoder = dlib_encoder()
    people: dict[str, list[tuple[str, list[Any]]]] = {}
    for path in photographs(args.photos):
        if path.parent.name == "groups":
            continue
        people.setdefault(path.parent.name, []).append(
            (path.name, encoder.faces(path.read_bytes()))
        )
    gallery = Gallery(DIM)
    enrolled: dict[str, np.ndarray] = {}
    for person, photos in people.items():
        name, faces = photos[0]
        assert len(faces) == 1, f"{person}/{name}: {len(faces)} faces"
        gallery.add(f"p:{person}", faces[0].vector)
        enrolled[person] = faces[0].vector
    print(f"  enrolled one photo each of {len(enrolled)} people: {', '.join(sorted(enrolled))}")

    probes = right = missed = wrong = no_face = 0
    for person, photos in people.items():
        for name, faces in photos[1:]:
            if not faces:
                no_face += 1
                print(f"    {person}/{name}: no face found")
                continue
            probes += 1
            face = max(faces, key=lambda f: (f.box.bottom - f.box.top) * (f.box.right - f.box.left))
            best = gallery.search(face.vector, 1)[0]
            ok = best.owner == f"p:{person}"
            if ok and best.distance < THRESHOLD:
                right += 1
            elif ok:
                missed += 1
            elif best.distance < THRESHOLD:
                wrong += 1
            else:
                missed += 1
            print(f"    {person}/{name}: best {best.owner[2:]} at {best.distance:.3f}")
    print(
        f"  rank-1 accuracy {right}/{probes} = {right / probes:.1%}; "
        f"misses (right person first but ≥ {THRESHOLD}, or no one within it) {missed}; "
        f"false matches {wrong}; photos without a detected face {no_face}"
    )

    impostor_probes = impostor_matches = 0
    for person, photos in people.items():
        for _, faces in photos:
            for face in faces:
                best = gallery.search(face.vector, 1, exclude={f"p:{person}"})
                impostor_probes += 1
                impostor_matches += bool(best) and best[0].distance < THRESHOLD
    print(
        f"  each person's photos against the others only: {impostor_matches} false matches "
        f"in {impostor_probes} probes"
    )

    groups = args.photos / "groups"
    for path in sorted(groups.glob("*")) if groups.is_dir() else []:
        found = [gallery.search(f.vector, 1)[0] for f in encoder.faces(path.read_bytes())]
        names = [m.owner[2:] if m.distance < THRESHOLD else "unknown" for m in found]
        print(f"    groups/{path.name}: {len(found)} faces → {', '.join(names)}")

    vectors = [
        (person, f.vector) for person, photos in people.items() for _, fs in photos for f in fs
    ]
    same, other = [], []
    for i in range(len(vectors)):
        for j in range(i + 1, len(vectors)):
            d = distance(vectors[i][1], vectors[j][1])
            (same if vectors[i][0] == vectors[j][0] else other).append(d)
    for label, ds in (("same person", same), ("different people", other)):
        print(
            f"  {label:>16}: {len(ds)} pairs, {min(ds):.2f}–{max(ds):.2f}, "
            f"median {statistics.median(ds):.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10k and 100k, shorter runs")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--ann-max", type=int, default=1_000_000, help="largest ANN gallery")
    parser.add_argument("--seconds", type=float, default=20.0, help="each throughput run")
    parser.add_argument(
        "--photos", type=Path, default=Path(os.environ.get("ANJU_FACE_FIXTURES", PHOTOS))
    )
    parser.add_argument("--skip", default="", help="comma-separated parts to skip")
    parser.add_argument(
        "--blas-threads", default=None, help="OPENBLAS_NUM_THREADS for the exact search"
    )
    parser.add_argument(
        "--expansions", default="64,128,256,512", help="ANN expansion_search values to measure"
    )
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.expansions = [int(e) for e in args.expansions.split(",")]
    if args.quick:
        args.sizes = [s for s in args.sizes if s <= 100_000]
        args.probes = min(args.probes, 100)
        args.seconds = min(args.seconds, 5.0)
    skip = set(filter(None, args.skip.split(",")))
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, numpy {np.__version__}, OpenBLAS threads "
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    if "identification" not in skip:
        identification(args)
    if not (args.photos / "obama" / "obama.jpg").is_file():
        print(f"\nphotographs not found in {args.photos}: throughput and accuracy skipped")
        return
    if "throughput" not in skip:
        throughput(args)
    if "accuracy" not in skip:
        accuracy(args)


if __name__ == "__main__":
    main()
