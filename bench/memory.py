"""Memory benchmark: the node's RSS while it ingests, for a 2,000-resident community.

    .venv/bin/python bench/memory.py [--residents 2000] [--events 200000] [--batch 500]
                                     [--clients 2] [--database sqlite|postgresql]
                                     [--pg postgresql://…]

1. builds the simulated community (``--residents``) in a temporary data folder (SQLite, or a
   throwaway PostgreSQL database), with card credentials and device credentials for two
   gates and two barriers (the same set-up as ``bench/ingest.py``);
2. starts the node — ``anju serve``, the real uvicorn server — as a **separate process** on
   that data folder, so that what is measured is the server alone;
3. POSTs ``--events`` realistic events in batches of ``--batch`` from ``--clients`` threads
   of this process to ``POST /api/v1/events``, each batch with its device's credential;
4. samples the server process's resident set size every 0.1 s throughout (psutil when
   installed, else ``VmRSS`` in ``/proc/<pid>/status``).

Prints RSS at rest before ingest, the peak, and the steady level (median over the last half
of the run) against the target (≤ 300 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import KEY, make_events, prepare

from anju.bootstrap import bootstrap
from anju.config import Settings

TARGET_MB = 300.0
MB = 1024 * 1024


def rss_bytes(pid: int) -> int | None:
    """The process's resident set size, or None once it is gone."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        pass
    except Exception:  # psutil.NoSuchProcess and the like
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Sampler:
    """Samples a process's RSS in a thread: (seconds since start, bytes)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid = pid
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            value = rss_bytes(self.pid)
            if value is not None:
                self.samples.append((time.perf_counter() - self._start, value))

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, database_url: str | None, port: int) -> subprocess.Popen[bytes]:
    """``anju serve`` on the prepared data folder, in a process of its own."""
    env = {
        **os.environ,
        "ANJU_DATA_DIR": str(data_dir),
        "ANJU_SECRET_KEY": KEY,
        "ANJU_LOG_LEVEL": "WARNING",
    }
    env.pop("ANJU_MQTT_URL", None)  # HTTP ingest only: no consumer beside the server
    if database_url:
        env["ANJU_DATABASE_URL"] = database_url
    anju = shutil.which("anju", path=str(Path(sys.executable).parent)) or "anju"
    server = subprocess.Popen(
        [anju, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"anju serve exited with {server.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/docs", timeout=2).status_code < 500:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("anju serve did not answer within 60 s")


def ingest(base: str, batches: list[tuple[int, bytes]], secrets: list[str], clients: int) -> int:
    """POST every batch; the number of events accepted."""
    accepted = [0] * clients
    errors: list[str] = []

    def work(i: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            for who, body in batches[i::clients]:
                r = client.post(
                    "/api/v1/events",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {secrets[who]}",
                        "Content-Type": "application/json",
                    },
                )
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    return
                accepted[i] += r.json()["accepted"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print(f"  errors: {errors[:3]}")
    return sum(accepted)


def run(data_dir: Path, database_url: str | None, label: str, args: argparse.Namespace) -> None:
    node = bootstrap(Settings(data_dir=data_dir, secret_key=KEY, database_url=database_url))
    try:
        site = prepare(node, args.residents)
    finally:
        node.dispose()
    batches = [
        (who, json.dumps(items).encode())
        for who, items in make_events(site, args.events, args.batch, "m", seed=1)
    ]
    secrets = [s[3] for s in site.senders]
    port = free_port()
    server = start_server(data_dir, database_url, port)
    try:
        sampler = Sampler(server.pid)
        time.sleep(1.0)
        at_rest = max((v for _, v in sampler.samples), default=rss_bytes(server.pid) or 0)
        start = time.perf_counter()
        accepted = ingest(f"http://127.0.0.1:{port}", batches, secrets, args.clients)
        elapsed = time.perf_counter() - start
        time.sleep(1.0)
        samples = sampler.stop()
    finally:
        server.terminate()
        server.wait(30)
    during = [v for t, v in samples if 1.0 <= t <= 1.0 + elapsed]
    if not during:
        raise SystemExit("no RSS samples taken during ingest")
    peak = max(v for _, v in samples)
    steady = statistics.median(during[len(during) // 2 :])
    verdict = "met" if peak / MB <= TARGET_MB else "NOT met"
    print(
        f"{label}: ingested {accepted}/{args.events} events in {elapsed:.1f} s "
        f"({args.events / elapsed:,.0f} events/s), {len(samples)} RSS samples"
    )
    print(
        f"{label}: server RSS at rest {at_rest / MB:.0f} MB, steady {steady / MB:.0f} MB, "
        f"peak {peak / MB:.0f} MB (target ≤ {TARGET_MB:.0f} MB: {verdict})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.database == "sqlite":
            run(Path(tmp), None, "SQLite", args)
            return
        name = f"anju_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = args.pg.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        try:
            run(Path(tmp), f"{base}/{name}", "PostgreSQL", args)
        finally:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
