"""A small synthetic Chinese + English intent set: 6 intents, 8 phrasings each (4 en, 4 zh).

The last English and the last Chinese phrasing of each intent are held out for testing.
"""

from __future__ import annotations

INTENTS: dict[str, list[str]] = {
    "track_order": [
        "where is my order",
        "has my parcel shipped yet",
        "track my package please",
        "when will my delivery arrive",
        "我的订单到哪了",
        "查一下我的快递",
        "包裹什么时候发货",
        "我的快递什么时候到",
    ],
    "refund": [
        "I want my money back",
        "please refund my payment",
        "how do I get a refund",
        "return the money to my card",
        "我要退款",
        "请把钱退给我",
        "怎么申请退款",
        "退款什么时候到账",
    ],
    "cancel_order": [
        "cancel my order",
        "I don't want this purchase anymore, cancel it",
        "please cancel the order I just placed",
        "how can I cancel my purchase",
        "取消我的订单",
        "我不想要了，帮我取消订单",
        "刚下的单可以取消吗",
        "怎么取消订单",
    ],
    "change_address": [
        "change my shipping address",
        "I moved, update the delivery address",
        "send it to a different address",
        "can I edit the address on my order",
        "修改收货地址",
        "我搬家了，要改地址",
        "能不能换个收货地址",
        "订单的地址写错了怎么改",
    ],
    "payment_problem": [
        "my card was declined",
        "payment failed at checkout",
        "I was charged twice",
        "why did my payment not go through",
        "付款失败了",
        "信用卡支付不了",
        "被重复扣款了",
        "为什么付不了钱",
    ],
    "contact_human": [
        "I want to talk to a real person",
        "connect me with customer service",
        "can I speak to an agent",
        "give me a human please",
        "我要人工客服",
        "转人工",
        "帮我联系客服人员",
        "我想和真人说话",
    ],
}

TRAIN_TEXTS: list[str] = []
TRAIN_LABELS: list[str] = []
TEST_TEXTS: list[str] = []
TEST_LABELS: list[str] = []
for _intent, _phrasings in INTENTS.items():
    for _i, _text in enumerate(_phrasings):
        held_out = _i in (3, 7)
        (TEST_TEXTS if held_out else TRAIN_TEXTS).append(_text)
        (TEST_LABELS if held_out else TRAIN_LABELS).append(_intent)

NONSENSE = ["qzxv blorf wumpf glarb", "zzkq pflm trov 8x8x", "香蕉量子紫色跳舞"]

REVIEWS = [
    ("great product, works perfectly", 1),
    ("质量很好，非常满意", 1),
    ("love it, would buy again", 1),
    ("物流很快，包装完好", 1),
    ("excellent value for the money", 1),
    ("东西不错，推荐购买", 1),
    ("terrible, broke after one day", 0),
    ("质量太差了，用了一天就坏", 0),
    ("waste of money, do not buy", 0),
    ("客服态度很差，不推荐", 0),
    ("arrived damaged and late", 0),
    ("做工粗糙，和图片不一样", 0),
]
