"""Simulated faces benchmark: calibration of the synthetic vectors and stranger clustering.

    .venv/bin/python bench/faces_sim.py [--people 400] [--per-person 4] [--couriers 20]
                                        [--visits 60] [--guests 600] [--threshold 0.6]
                                        [--stranger-threshold 0.55] [--no-node] [--json]

1. **Calibration** — ``--people`` simulated people with ``--per-person`` sightings each
   (:mod:`anju.sim.faces`): same-person distances (every pair of a person's sightings) and
   different-person distances (every pair of people), their quantiles beside the real
   photographs' (dlib ResNet on ``fixtures/faces``: same 0.04–0.53, median 0.34; different
   0.66–1.03, median 0.84), false matches (different people within ``--threshold``) and
   misses (the same person beyond it).
2. **Stranger clustering** — unknown faces at the gates as the simulator lives them:
   ``--couriers`` recurring people seen ``--visits`` times each and ``--guests`` people seen
   twice, in time order. Purity (share of clusters holding one true identity) and
   fragmentation (share of identities seen twice or more that fall in several clusters,
   and clusters per identity):
   * *reference*: :func:`anju.sim.faces.cluster_online` (nearest representative within
     ``--stranger-threshold``, three representatives a cluster);
   * *node*: the same sightings sent as ``capture.face`` events through the node's real
     pipeline (a fresh SQLite node in a temporary folder, face recognition and stranger
     clustering of :mod:`anju.faces`), the clusters read back as the events' ``S-…``
     subjects. Skipped with ``--no-node`` or when the node has no face service.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anju.sim.faces import (
    MODEL,
    SimFaces,
    cluster_online,
    cluster_quality,
    distance_samples,
    stranger_sightings,
    track_id,
    wire_vector,
)

REAL = {"same": (0.04, 0.34, 0.53), "different": (0.66, 0.84, 1.03)}  # min, median, max


def _quantiles(values: list[float]) -> dict[str, float]:
    q = np.quantile(values, [0.0, 0.01, 0.5, 0.99, 1.0])
    names = ("min", "p1", "median", "p99", "max")
    return {name: round(float(v), 3) for name, v in zip(names, q, strict=True)}


def calibration(people: int, per_person: int, threshold: float) -> dict[str, Any]:
    """Distance distributions of simulated faces, with false matches and misses."""
    same, different = distance_samples(SimFaces("BENCH"), people, per_person)
    return {
        "people": people,
        "same": {"pairs": len(same), **_quantiles(same)},
        "different": {"pairs": len(different), **_quantiles(different)},
        "false_match_rate": sum(d <= threshold for d in different) / len(different),
        "miss_rate": sum(d > threshold for d in same) / len(same),
    }


def node_clusters(truth: list[str], vectors: list[Any]) -> list[str] | None:
    """The sightings through a fresh node's pipeline: the stranger code each was given
    (None when the node has no face recognition)."""
    try:
        import anju.faces.service  # noqa: F401
    except ImportError:
        return None
    from sqlalchemy import select

    from anju.bootstrap import bootstrap, initialise
    from anju.config import Settings
    from anju.core.scope import Actor
    from anju.events import wire
    from anju.events.api import Sender, deliver
    from anju.events.models import StoredEvent
    from anju.sim.community import CommunityConfig, build_community

    folder = Path(tempfile.mkdtemp(prefix="anju-bench-faces-"))
    key = base64.b64encode(os.urandom(32)).decode()
    node = bootstrap(Settings(data_dir=folder, secret_key=key))
    try:
        initialise(node, admin_password=base64.b64encode(os.urandom(12)).decode())
        with node.unit_of_work() as ctx:
            report = build_community(ctx, CommunityConfig(seed=1, residents=30, code="FSIM"))
        with node.sessions() as session:
            from anju.devices.models import Device, DeviceKind

            camera = session.scalar(
                select(Device.code).where(
                    Device.community_id == report.community_id,
                    Device.kind == DeviceKind.FACE_CAMERA,
                )
            )
        assert camera is not None, "the community has no face capture camera"
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=7)
        step = dt.timedelta(days=7) / max(len(vectors), 1)
        sender = Sender(None, Actor.system("bench"))
        ids: list[str] = []
        bodies: list[dict[str, Any]] = []
        for n, (who, vector) in enumerate(zip(truth, vectors, strict=True)):
            at = start + n * step
            ids.append(f"fsim-{n:06d}")
            bodies.append(
                {
                    "id": ids[-1],
                    "device": camera,
                    "kind": "capture.face",
                    "at": at.isoformat(),
                    "subject": {"type": "face", "value": track_id("bench", n, who)},
                    "data": {"feature": wire_vector(vector), "model": MODEL},
                }
            )
        now = dt.datetime.now(dt.UTC)
        for i in range(0, len(bodies), 100):  # in order: each batch sees the clusters before
            deliver(node, wire.parse_batch(bodies[i : i + 100], now), sender)
        with node.sessions() as session:
            got = dict(
                session.execute(
                    select(StoredEvent.event_key, StoredEvent.subject_value).where(
                        StoredEvent.event_key.in_(ids)
                    )
                ).all()
            )
        return [str(got.get(i)) for i in ids]
    finally:
        node.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--per-person", type=int, default=4)
    parser.add_argument("--couriers", type=int, default=20)
    parser.add_argument("--visits", type=int, default=60)
    parser.add_argument("--guests", type=int, default=600)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--stranger-threshold", type=float, default=0.55)
    parser.add_argument("--no-node", action="store_true", help="only the reference clustering")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    started = time.monotonic()
    out: dict[str, Any] = {"calibration": calibration(args.people, args.per_person, args.threshold)}
    truth, vectors = stranger_sightings(
        SimFaces("BENCH"), recurring=args.couriers, visits=args.visits, one_off=args.guests
    )
    reference = cluster_online(vectors, args.stranger_threshold)
    out["strangers"] = {"reference": cluster_quality(truth, reference).as_dict()}
    if not args.no_node:
        t = time.monotonic()
        codes = node_clusters(truth, vectors)
        if codes is not None:
            out["strangers"]["node"] = {
                **cluster_quality(truth, codes).as_dict(),
                "seconds": round(time.monotonic() - t, 1),
            }
    out["seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    c = out["calibration"]
    print(f"simulated faces ({MODEL}), {c['people']} people:")
    for kind in ("same", "different"):
        q = c[kind]
        lo, med, hi = REAL[kind]
        print(
            f"  {kind:9} {q['pairs']:6} pairs  min {q['min']:.3f}  p1 {q['p1']:.3f}  "
            f"median {q['median']:.3f}  p99 {q['p99']:.3f}  max {q['max']:.3f}"
            f"   (real photos {lo:.2f}–{hi:.2f}, median {med:.2f})"
        )
    print(
        f"  at threshold {args.threshold}: false matches {c['false_match_rate']:.5f}, "
        f"misses {c['miss_rate']:.5f}"
    )
    print(
        f"stranger clustering: {args.couriers} couriers × {args.visits} visits, "
        f"{args.guests} guests × 2 (threshold {args.stranger_threshold}):"
    )
    for name, q in out["strangers"].items():
        print(
            f"  {name:9} {q['sightings']} sightings, {q['identities']} identities → "
            f"{q['clusters']} clusters; purity {q['purity']:.4f}, split {q['split']:.4f}, "
            f"clusters per identity {q['clusters_per_identity']:.3f}"
        )
    print(f"({out['seconds']} s)")


if __name__ == "__main__":
    main()
