"""Time of one assistant turn, and e5 runs per turn, on the small test shop (fresh embedding cache).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/assistant/turn_time.py [--no-cache]

``--no-cache`` gives the assistant an encoder without the on-disk embedding cache, so every
request reaching the encoder runs the model. To time an older commit, unpack it and put its
``src`` first on the path (``--root`` is where its ``tests/assistant/dialogue_shop.py`` is)::

    git archive <commit> | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/assistant/turn_time.py --root /tmp/old

Prints wall and process-CPU medians: on shared cores the wall time follows the load, the CPU
time much less.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MESSAGES = [
    ("U1", "Where is my order O0000102 right now?"),
    ("U1", "can you tell me the status of O0000101"),
    ("U1", "What is your policy on returns after two weeks?"),
    ("U1", "Do you accept PayPal or only cards?"),
    ("U1", "How much are the Trail Running Shoes?"),
    ("U1", "please recommend a gift for a coffee lover"),
    ("U1", "I would like to change the address of O0000101 to 8 Lake Street, Hangzhou 310000"),
    ("U1", "Nobody answered my emails and my parcel is a week late."),
    ("U1", "thanks a lot for the help today"),
    ("U1", "How long does delivery to Beijing take?"),
    ("U2", "我的订单O0000202到哪里了？"),
    ("U2", "请问退货政策是怎样的"),
    ("U2", "保温杯多少钱一个"),
    ("U2", "帮我推荐一款适合上班用的包"),
    ("U2", "订单O0000201能改地址吗"),
    ("U2", "等了一个星期还没发货，也没人回复我"),
    ("U2", "谢谢你的耐心解答"),
    ("U2", "支持花呗付款吗"),
    ("U2", "发票怎么开"),
    ("U2", "你们周末发货吗"),
]
WARM_UP = ["hello there", "what is the refund policy", "how much is the mug", "recommend me a speaker"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-cache", action="store_true", help="an encoder without the on-disk embedding cache")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2], help="the checkout's root")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root))
    from tests.assistant.dialogue_shop import build_shop

    from shoplm.app.assistant import Assistant
    from shoplm.assistant.training import train_assistant
    from shoplm.lm import load_encoder

    shop = build_shop(Path(tempfile.mkdtemp()) / "shop")
    started = time.perf_counter()
    train_assistant(shop.settings)  # models load explicitly: train them first, as `shoplm train assistant`
    print(f"trained the intent and sentiment models: {time.perf_counter() - started:.1f} s")
    encoder = load_encoder(shop.settings, cache=not args.no_cache)
    bot = Assistant.load(shop.store, shop.settings, policies_dir=shop.policies_dir, encoder=encoder)
    model = getattr(encoder, "inner", encoder)
    asked: list[str] = []
    encode = model.encode

    def counting(texts: list[str], **kwargs: Any) -> Any:
        if kwargs.get("mode", "passage") == "query":
            asked.extend(texts)
        return encode(texts, **kwargs)

    model.encode = counting  # the model itself, behind every cache: each text here is an e5 run
    started = time.perf_counter()
    for text in WARM_UP:  # first inference runs of the loaded models
        bot.reply("warm-up", "U1", text)
    print(f"warm-up: {time.perf_counter() - started:.1f} s")

    for label, prefix in (("new texts", "c"), ("same texts again", "again")):
        wall, cpu, runs = [], [], []
        for n, (user, text) in enumerate(MESSAGES):
            before, cpu_start = len(asked), time.process_time()
            turn = bot.reply(f"{prefix}{n}", user, text)
            cpu.append((time.process_time() - cpu_start) * 1000)
            wall.append(turn.seconds * 1000)
            runs.append(len(asked) - before)
        wall.sort()
        print(
            f"{label}: median {statistics.median(wall):.1f} ms wall (p90 {wall[int(0.9 * len(wall)) - 1]:.1f}, "
            f"max {wall[-1]:.1f}), median {statistics.median(cpu):.1f} ms CPU; "
            f"e5 runs per turn max {max(runs)}, {sum(runs)} for {len(MESSAGES)} turns"
        )


if __name__ == "__main__":
    main()
