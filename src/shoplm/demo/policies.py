"""The demo store's policy documents (markdown, English and Chinese sections).

The numbers here (free shipping over ¥99, 7-day returns, refunds in 3-5 business days, ...)
are the same ones the demo support agents quote, so a support assistant grounded on these
documents gives answers that agree with the chat history.
"""

from __future__ import annotations

POLICIES: dict[str, str] = {
    "shipping.md": """# Shipping policy / 配送政策

## English

- Orders are dispatched within 48 hours of payment (Monday to Sunday).
- Standard shipping is **free on orders over ¥99**; below that it costs ¥10.
- Mainland China: standard delivery 2-5 business days; express (¥25) 1-2 business days.
- International (US, UK, EU, Japan, Singapore, Australia, Canada): 7-15 business days. Import
  duties and taxes are paid by the recipient.
- The shipping address can be changed free of charge until the order ships.
- Tracking numbers appear under *My Orders* as soon as the parcel is handed to the carrier.

## 中文

- 付款后48小时内发货（周一至周日）。
- 订单**满99元包邮**，不满99元收取10元运费。
- 中国大陆：普通快递2-5个工作日送达；加急快递（25元）1-2个工作日送达。
- 国际订单（美国、英国、欧盟、日本、新加坡、澳大利亚、加拿大）：7-15个工作日送达，进口关税由收件人承担。
- 订单发货前可免费修改收货地址。
- 包裹交付快递后，可在“我的订单”中查看物流单号。
""",
    "returns.md": """# Returns and refunds / 退换货与退款

## English

- **7-day no-reason returns**: unused items in their original packaging can be returned within
  7 days of delivery. The customer pays return shipping unless the item is faulty.
- **Faulty or damaged items**: returned or exchanged within 30 days of delivery; we pay shipping.
- Orders can be cancelled free of charge until they ship.
- Refunds go back to the original payment method within **3-5 business days** after the return
  is received and checked (cards may take up to 10 days to show the credit).
- Not returnable: opened skincare and makeup, food and tea, pet food, personalised items.

## 中文

- **7天无理由退货**：签收后7天内，商品未使用且包装完好可申请退货，退货运费由买家承担（质量问题除外）。
- **质量问题**：签收后30天内可退换，运费由我们承担。
- 订单发货前可免费取消。
- 退货签收并检验后，退款将在**3-5个工作日**内原路退回（信用卡到账可能需要10天）。
- 不支持无理由退货：已开封的护肤品和彩妆、食品和茶叶、宠物食品、定制商品。
""",
    "payment.md": """# Payment / 支付方式

## English

- We accept Alipay, WeChat Pay, UnionPay, Visa, Mastercard and PayPal. Prices are in CNY (¥).
- Orders are held for 30 minutes while awaiting payment, then cancelled automatically.
- A failed or duplicate charge is released by the bank within 3-7 business days. If it is
  not, contact support with the transaction id.
- Large orders or orders shipped to a country other than the account's may be reviewed by our
  fraud team before they ship.

## 中文

- 支持支付宝、微信支付、银联、Visa、Mastercard和PayPal，价格以人民币（¥）计。
- 订单待支付状态保留30分钟，超时自动取消。
- 支付失败或重复扣款，银行一般会在3-7个工作日内退回；如未退回，请提供交易单号联系客服。
- 大额订单或收货国家与账户国家不一致的订单，发货前可能需要风控审核。
""",
    "warranty.md": """# Warranty / 质保政策

## English

- Electronics and computer accessories: **1-year warranty** from the delivery date.
- Furniture, lighting and kitchen appliances: 1-year warranty on manufacturing defects.
- The warranty covers manufacturing defects, not accidental damage, water damage (unless the
  product is rated waterproof) or normal wear.
- To claim, contact support with your order id and a photo or video of the problem; we repair,
  replace or refund.

## 中文

- 电子产品和电脑配件：自签收之日起**一年质保**。
- 家具、灯具和厨房电器：非人为质量问题一年质保。
- 质保范围为生产缺陷，不包括人为损坏、进水（防水产品除外）和正常磨损。
- 申请质保请联系客服并提供订单号和问题照片或视频，我们将维修、换新或退款。
""",
    "promotions.md": """# Coupons and price protection / 优惠券与价格保护

## English

- Coupons and voucher codes are entered at checkout; one coupon per order, and a coupon cannot be
  exchanged for cash. Coupons you have received are listed under *Account > Coupons*.
- New members get a ¥20 welcome coupon on orders over ¥199, valid for 30 days.
- **Price protection**: if the price of an item you bought drops in our shop within 7 days of
  your purchase, we refund the difference. Ask support with your order id.
- We do not match prices of other shops or marketplaces.

## 中文

- 优惠券和优惠码在结算时使用；每单限用一张优惠券，优惠券不能兑换现金。已领取的优惠券可在“账户 > 优惠券”中查看。
- 新会员可获得满199元减20元的新人券，30天内有效。
- **价格保护**：购买后7天内本店同款商品降价，可申请退还差价，请提供订单号联系客服。
- 我们不提供其他店铺或平台的比价补差。
""",
    "privacy.md": """# Privacy / 隐私政策

## English

- We collect the data needed to run your orders: contact details, shipping address, order and
  browsing history.
- Browsing and purchase history is used to personalise recommendations. You can switch this off
  under *Account > Privacy*.
- We never sell personal data. Payment details are handled by the payment provider and never
  stored by us.
- You can ask for a copy of your data or for its deletion at any time through support.

## 中文

- 我们仅收集处理订单所需的数据：联系方式、收货地址、订单和浏览记录。
- 浏览和购买记录用于个性化推荐，可在“账户 > 隐私设置”中关闭。
- 我们绝不出售个人信息，支付信息由支付机构处理，我们不会保存。
- 您可以随时通过客服申请导出或删除您的个人数据。
""",
}
