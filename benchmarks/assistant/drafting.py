"""Reply drafting measured: faithfulness, language match and latency of each generator on the scripted conversations.

    python benchmarks/assistant/drafting.py [--gguf model.gguf] [--openai-base-url URL --openai-model M] [--out r.json]

Every scripted conversation of the test suite (``tests/assistant/conversations/*.yaml``) is
replayed against the small test shop, once per generator: the template generator (always), a
local GGUF model through llama-cpp-python (``--gguf``; the ``llm`` extra), an OpenAI-compatible
endpoint (``--openai-base-url``). For each turn whose reply was phrased by the generator from
facts, the report counts:

- **faithful**: :func:`shoplm.lm.faithfulness.check_faithfulness` finds no amount, date, period,
  percentage or order id in the reply that the turn's facts lack;
- **language match**: the reply is in the conversation's language (Chinese when CJK characters
  dominate);
- **latency**: the turn's own seconds (intent, tools and generation).

A generator that fails falls back to the templates (the product's behaviour); those turns are
counted as ``fallbacks``. Nothing is downloaded: the GGUF file is a local path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _generators(args: argparse.Namespace) -> list[tuple[str, Any]]:
    from shoplm.config import GeneratorSettings
    from shoplm.lm import load_generator

    out: list[tuple[str, Any]] = [("template", load_generator(GeneratorSettings(kind="template")))]
    if args.gguf:
        settings = GeneratorSettings(kind="llama_cpp", gguf_path=args.gguf)
        out.append((f"gguf:{Path(args.gguf).name}", load_generator(settings)))
    if args.openai_base_url:
        settings = GeneratorSettings(kind="openai", base_url=args.openai_base_url, model=args.openai_model)
        out.append((f"openai:{args.openai_model}", load_generator(settings)))
    return out


def run(generator_name: str, generator: Any, scripts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from tests.assistant.dialogue_shop import build_shop

    from shoplm.app.assistant import Assistant
    from shoplm.assistant.entities import detect_language
    from shoplm.assistant.training import train_assistant
    from shoplm.lm.faithfulness import check_faithfulness

    shop = build_shop(Path(tempfile.mkdtemp()) / "shop")
    train_assistant(shop.settings)
    turns, seconds, faithful, matched, fallbacks, failures = 0, [], 0, 0, 0, []
    for name, script in sorted(scripts.items()):
        bot = Assistant.load(shop.store, shop.settings, generator=generator, policies_dir=shop.policies_dir)
        for step in script["turns"]:
            turn = bot.reply(f"{generator_name}-{name}", script["user"], step["say"])
            seconds.append(turn.seconds)
            if not turn.facts:
                continue  # a fixed template reply (greeting, refusal without facts): nothing generated
            turns += 1
            report = check_faithfulness(turn.text, turn.facts)
            faithful += report.ok
            language_ok = detect_language(turn.text, default=turn.language) == turn.language
            matched += language_ok
            fallbacks += "template" not in generator_name and _looks_templated(turn.text)
            if not report.ok or not language_ok:
                failures.append(
                    {
                        "script": name,
                        "say": step["say"],
                        "reply": turn.text,
                        "unsupported": report.unsupported,
                        "language": turn.language,
                        "language_ok": language_ok,
                    }
                )
    seconds.sort()
    return {
        "generator": generator_name,
        "turns_with_facts": turns,
        "faithful_rate": round(faithful / turns, 4) if turns else None,
        "language_match_rate": round(matched / turns, 4) if turns else None,
        "latency_median_s": round(statistics.median(seconds), 3),
        "latency_p90_s": round(seconds[int(0.9 * (len(seconds) - 1))], 3),
        "template_like_replies": fallbacks,
        "failures": failures[:20],
    }


def _looks_templated(text: str) -> bool:
    return text.startswith(("Here is what I found", "以下是我查到的信息"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, default=None, help="a local GGUF chat model (llama-cpp-python)")
    parser.add_argument("--openai-base-url", default=None)
    parser.add_argument("--openai-model", default="")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.assistant.conversation_runner import load_scripts

    scripts = load_scripts()
    results = []
    for name, generator in _generators(args):
        started = time.perf_counter()
        result = run(name, generator, scripts)
        result["wall_seconds"] = round(time.perf_counter() - started, 1)
        results.append(result)
        shown = {k: v for k, v in result.items() if k != "failures"}
        print(json.dumps(shown, ensure_ascii=False))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
