"""The first assistant answer after start: `shoplm serve` (ready, then the first message) and `shoplm chat`.

    python benchmarks/assistant/first_answer.py --data-dir /tmp/shoplm-demo [--runs 3] [--out first.json]

The data dir must hold a trained shop with the assistant's models (``shoplm demo --small
--data-dir DIR`` trains both). Per run, a fresh server process is started and timed:

- ``ready_seconds``: from starting ``shoplm serve`` to the first ``/readyz`` 200 (every model
  loaded: recommender, assistant, encoders);
- ``first_answer_seconds``: the first ``POST /v1/assistant/messages`` after that (a known demo
  user asking where their order is);
- ``second_answer_seconds``: the next message of the same conversation.

And for ``shoplm chat --json`` (piped: the prompt is the moment the process reads its first line,
after loading): ``chat_first_turn_seconds``, the first turn's own time as the assistant reports
it, and ``chat_process_seconds``, from start to the first reply (loading included).

Only 127.0.0.1 is contacted; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHOPLM = [sys.executable, "-m", "shoplm.cli"]
MESSAGES = ["where is my order?", "我的订单到哪了？"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(url: str, body: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", "X-API-Key": key}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _key(data_dir: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [*SHOPLM, "keys", "create", "--name", "first-answer", "--scope", "write", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return out.strip().splitlines()[-1].strip()  # the secret is the last line


def _user(data_dir: Path) -> str:
    """A demo user with orders (the demo source's orders file)."""
    import pandas as pd

    for name in ("orders.csv", "orders.parquet"):
        path = data_dir / "demo-source" / name
        if path.exists():
            frame = pd.read_csv(path) if name.endswith(".csv") else pd.read_parquet(path)
            return str(frame["user_id"].dropna().astype(str).iloc[0])
    return "U00001"


def serve_run(data_dir: Path, env: dict[str, str], key: str, user: str) -> dict[str, float]:
    port = _free_port()
    started = time.perf_counter()
    log_path = Path(tempfile.mkstemp(prefix="shoplm-first-answer-", suffix=".log")[1])
    log = log_path.open("w")
    server = subprocess.Popen(
        [*SHOPLM, "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ready = None
        while time.perf_counter() - started < 300:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
                    if response.status == 200 and json.loads(response.read()).get("assistant"):
                        ready = time.perf_counter() - started
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        if ready is None:
            raise RuntimeError(f"the server was not ready in 300 s (log: {log_path})")
        times = []
        for text in MESSAGES:
            t0 = time.perf_counter()
            status, body = _post(
                base + "/v1/assistant/messages",
                {"conversation_id": f"first-{port}", "user_id": user, "text": text},
                key,
            )
            times.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"assistant answered {status}: {body}")
        return {"ready_seconds": ready, "first_answer_seconds": times[0], "second_answer_seconds": times[1]}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def chat_run(data_dir: Path, env: dict[str, str], user: str) -> dict[str, float]:
    started = time.perf_counter()
    chat = subprocess.Popen(
        [*SHOPLM, "chat", "--json", "--user", user, "--data-dir", str(data_dir)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert chat.stdin is not None and chat.stdout is not None
    chat.stdin.write(MESSAGES[0] + "\n")
    chat.stdin.flush()
    line = chat.stdout.readline()
    process = time.perf_counter() - started
    chat.stdin.close()
    chat.wait(timeout=60)
    turn = json.loads(line)
    return {"chat_first_turn_seconds": float(turn["seconds"]), "chat_process_seconds": process}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": "1"}
    key = _key(args.data_dir, env)
    user = _user(args.data_dir)
    runs = [
        {**serve_run(args.data_dir, env, key, user), **chat_run(args.data_dir, env, user)} for _ in range(args.runs)
    ]
    summary = {name: round(statistics.median(r[name] for r in runs), 3) for name in runs[0]}
    report = {"median": summary, "runs": runs, "user": user, "messages": MESSAGES}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
