"""Words the demo store is built from: categories, brands, attributes, review and chat phrases.

Everything here is plain data (no randomness), so the generator stays deterministic and the
tests can check generated text against the same phrase lists. Category paths are English
(stable keys for the ground truth); item titles, reviews and chats are in English or Chinese.
All brand names are invented.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    """One leaf category of the demo catalog.

    ``price`` is the (low, high) range in CNY that item prices are drawn from (log-normal,
    clipped). ``nouns``/``features``/``materials``/``sizes`` are (English, Chinese) pairs.
    ``queries`` are extra search words beyond the nouns.
    """

    path: str
    nouns: tuple[tuple[str, str], ...]
    brands: tuple[str, ...]
    price: tuple[float, float]
    features: tuple[tuple[str, str], ...]
    materials: tuple[tuple[str, str], ...] = ()
    sizes: tuple[tuple[str, str], ...] = ()
    has_color: bool = True


CATEGORIES: tuple[Category, ...] = (
    Category(
        "Electronics > Headphones",
        (
            ("Wireless Earbuds", "无线耳机"),
            ("Noise-Cancelling Headphones", "降噪耳机"),
            ("Over-ear Headphones", "头戴式耳机"),
        ),
        ("Sonora", "声悦", "AuraBeat", "漫听", "Kinetic"),
        (99, 2999),
        (
            ("Bluetooth 5.3", "蓝牙5.3"),
            ("40h Battery", "40小时续航"),
            ("Active Noise Cancelling", "主动降噪"),
            ("Hi-Res Audio", "高解析音质"),
        ),
        (("Plastic", "塑料"), ("Aluminium", "铝合金"), ("Protein Leather", "蛋白皮")),
        (("In-ear", "入耳式"), ("Over-ear", "头戴式"), ("On-ear", "贴耳式")),
    ),
    Category(
        "Electronics > Phone Accessories",
        (
            ("Phone Case", "手机壳"),
            ("Fast Charger", "快充充电器"),
            ("USB-C Cable", "Type-C数据线"),
            ("Power Bank", "充电宝"),
        ),
        ("Voltix", "极充", "Shieldy", "壳小二"),
        (19, 399),
        (
            ("65W Fast Charging", "65W快充"),
            ("MagSafe Compatible", "支持磁吸"),
            ("Drop Protection", "防摔"),
            ("20000mAh", "20000毫安"),
        ),
        (("Silicone", "硅胶"), ("TPU", "TPU"), ("Nylon Braided", "编织尼龙")),
        (("1m", "1米"), ("2m", "2米"), ("Standard", "标准款")),
    ),
    Category(
        "Electronics > Smart Watches",
        (("Smart Watch", "智能手表"), ("Fitness Band", "运动手环")),
        ("Pulse", "腕动", "Chronix", "智跑"),
        (199, 3999),
        (
            ("Heart-rate Monitor", "心率监测"),
            ("GPS", "GPS定位"),
            ("14-day Battery", "14天续航"),
            ("AMOLED Display", "AMOLED屏"),
        ),
        (("Stainless Steel", "不锈钢"), ("Titanium", "钛合金"), ("Silicone Strap", "硅胶表带")),
        (("42mm", "42毫米"), ("46mm", "46毫米")),
    ),
    Category(
        "Electronics > Cameras",
        (("Action Camera", "运动相机"), ("Mirrorless Camera", "微单相机"), ("Instant Camera", "拍立得")),
        ("Lumio", "光影", "Framer", "拍客"),
        (599, 12999),
        (
            ("4K 60fps", "4K 60帧"),
            ("Image Stabilisation", "防抖"),
            ("Waterproof 10m", "10米防水"),
            ("24MP Sensor", "2400万像素"),
        ),
        (("Magnesium Alloy", "镁合金"), ("Plastic", "塑料")),
        (("Body Only", "单机身"), ("With Kit Lens", "含套头")),
    ),
    Category(
        "Computers > Keyboards & Mice",
        (("Mechanical Keyboard", "机械键盘"), ("Wireless Mouse", "无线鼠标"), ("Gaming Mouse", "电竞鼠标")),
        ("Keyforge", "键客", "Clicko", "雷动"),
        (49, 1299),
        (
            ("Hot-swappable", "热插拔"),
            ("RGB Backlight", "RGB背光"),
            ("Tri-mode", "三模连接"),
            ("Silent Clicks", "静音按键"),
        ),
        (("ABS", "ABS"), ("PBT Keycaps", "PBT键帽"), ("Aluminium", "铝合金")),
        (("75%", "75%配列"), ("Full-size", "全尺寸"), ("Compact", "紧凑款")),
    ),
    Category(
        "Computers > Monitors",
        (("Monitor", "显示器"), ("Gaming Monitor", "电竞显示器"), ("Portable Monitor", "便携显示器")),
        ("Vistara", "视界", "Pixelon", "明屏"),
        (699, 4999),
        (("144Hz", "144Hz高刷"), ("4K UHD", "4K超清"), ("IPS Panel", "IPS面板"), ("USB-C 65W", "Type-C 65W反向充电")),
        (("Plastic", "塑料"), ("Metal Stand", "金属支架")),
        (("24-inch", "24英寸"), ("27-inch", "27英寸"), ("32-inch", "32英寸")),
    ),
    Category(
        "Home > Kitchen",
        (("Non-stick Pan", "不粘锅"), ("Knife Set", "刀具套装"), ("Rice Cooker", "电饭煲"), ("Vacuum Flask", "保温杯")),
        ("Chefly", "厨匠", "Homie", "禾家", "Cuisio"),
        (39, 1599),
        (
            ("Induction Ready", "电磁炉通用"),
            ("Dishwasher Safe", "可洗碗机清洗"),
            ("12h Heat Retention", "12小时保温"),
            ("Smart Timer", "智能预约"),
        ),
        (("Stainless Steel", "不锈钢"), ("Cast Iron", "铸铁"), ("Ceramic", "陶瓷")),
        (("500ml", "500毫升"), ("28cm", "28厘米"), ("3L", "3升")),
    ),
    Category(
        "Home > Bedding",
        (("Duvet Cover Set", "四件套"), ("Down Duvet", "羽绒被"), ("Memory Foam Pillow", "记忆棉枕头")),
        ("Slumbr", "眠趣", "Cloudnest", "棉语"),
        (59, 2499),
        (("Breathable", "透气"), ("Hypoallergenic", "防螨抗菌"), ("All-season", "四季通用")),
        (("Cotton", "纯棉"), ("Silk", "真丝"), ("Linen", "亚麻")),
        (("Single", "单人"), ("Queen", "1.8米"), ("King", "2米")),
    ),
    Category(
        "Home > Furniture",
        (("Ergonomic Chair", "人体工学椅"), ("Standing Desk", "升降书桌"), ("Bookshelf", "置物架")),
        ("Oakline", "木说", "Sitwell", "家悦"),
        (129, 4999),
        (("Lumbar Support", "腰部支撑"), ("Height Adjustable", "高度可调"), ("Easy Assembly", "安装简单")),
        (("Solid Wood", "实木"), ("Steel", "钢架"), ("Mesh", "网布")),
        (("Small", "小号"), ("Large", "大号")),
    ),
    Category(
        "Home > Lighting",
        (("Desk Lamp", "台灯"), ("Ceiling Light", "吸顶灯"), ("Night Light", "小夜灯")),
        ("Lumina", "光年", "Glowy", "明亮家"),
        (39, 999),
        (("Eye-care LED", "护眼LED"), ("Dimmable", "无极调光"), ("App Control", "APP控制")),
        (("Aluminium", "铝合金"), ("Acrylic", "亚克力")),
        (("30cm", "30厘米"), ("50cm", "50厘米")),
    ),
    Category(
        "Fashion > Women's Clothing",
        (("Dress", "连衣裙"), ("Knit Cardigan", "针织开衫"), ("Trench Coat", "风衣")),
        ("Mirelle", "衣见", "Solenne", "素锦"),
        (69, 1299),
        (("Slim Fit", "修身"), ("Loose Fit", "宽松"), ("Machine Washable", "可机洗")),
        (("Cotton", "纯棉"), ("Wool", "羊毛"), ("Polyester", "聚酯纤维")),
        (("S", "S码"), ("M", "M码"), ("L", "L码"), ("XL", "XL码")),
    ),
    Category(
        "Fashion > Men's Clothing",
        (("T-Shirt", "T恤"), ("Jacket", "夹克"), ("Oxford Shirt", "牛津衬衫")),
        ("Northmen", "型男志", "Urbane", "布衣"),
        (49, 999),
        (("Regular Fit", "常规版型"), ("Wrinkle-free", "免烫"), ("Water-repellent", "防泼水")),
        (("Cotton", "纯棉"), ("Linen", "亚麻"), ("Nylon", "尼龙")),
        (("M", "M码"), ("L", "L码"), ("XL", "XL码"), ("XXL", "XXL码")),
    ),
    Category(
        "Fashion > Shoes",
        (("Running Shoes", "跑鞋"), ("Canvas Sneakers", "帆布鞋"), ("Leather Loafers", "皮鞋")),
        ("Stridex", "步履", "Kicko", "轻跑"),
        (99, 1499),
        (("Cushioned Sole", "缓震鞋底"), ("Non-slip", "防滑"), ("Breathable Mesh", "透气网面")),
        (("Mesh", "网布"), ("Leather", "真皮"), ("Canvas", "帆布")),
        (("EU 39", "39码"), ("EU 41", "41码"), ("EU 43", "43码")),
    ),
    Category(
        "Fashion > Bags",
        (("Backpack", "双肩包"), ("Tote Bag", "托特包"), ("Carry-on Suitcase", "登机箱")),
        ("Wanderly", "行者", "Baggio", "包邦"),
        (79, 2999),
        (("Laptop Compartment", "电脑隔层"), ("Water-resistant", "防水"), ("TSA Lock", "海关锁")),
        (("Nylon", "尼龙"), ("Leather", "真皮"), ("Polycarbonate", "PC材质")),
        (("20-inch", "20寸"), ("24-inch", "24寸"), ("One Size", "均码")),
    ),
    Category(
        "Beauty > Skincare",
        (("Face Cream", "面霜"), ("Serum", "精华液"), ("Sunscreen SPF50", "防晒霜")),
        ("Dermia", "肌语", "Purelle", "润颜"),
        (39, 1299),
        (("Hyaluronic Acid", "玻尿酸"), ("Fragrance-free", "无香精"), ("For Sensitive Skin", "敏感肌适用")),
        (),
        (("30ml", "30毫升"), ("50ml", "50毫升"), ("100ml", "100毫升")),
        has_color=False,
    ),
    Category(
        "Beauty > Makeup",
        (("Lipstick", "口红"), ("Foundation", "粉底液"), ("Eyeshadow Palette", "眼影盘")),
        ("Rougea", "唇色", "Glamo", "妆点"),
        (29, 699),
        (("Long-lasting", "持久不脱妆"), ("Matte Finish", "哑光"), ("Vegan", "纯素配方")),
        (),
        (("3.5g", "3.5克"), ("30ml", "30毫升")),
    ),
    Category(
        "Sports > Fitness",
        (("Yoga Mat", "瑜伽垫"), ("Adjustable Dumbbells", "可调节哑铃"), ("Resistance Bands", "弹力带")),
        ("Flexa", "力动", "Ironwell", "悦健"),
        (19, 1999),
        (("Non-slip", "防滑"), ("Quick Adjust", "快速调节"), ("Extra Thick", "加厚")),
        (("TPE", "TPE"), ("Cast Iron", "铸铁"), ("Latex", "乳胶")),
        (("6mm", "6毫米"), ("10mm", "10毫米"), ("24kg", "24公斤")),
    ),
    Category(
        "Sports > Outdoor",
        (("Camping Tent", "帐篷"), ("Trekking Poles", "登山杖"), ("Sleeping Bag", "睡袋")),
        ("Trailhead", "野径", "Summit", "山行"),
        (49, 2999),
        (("Waterproof", "防水"), ("Ultralight", "超轻"), ("Quick Setup", "速开")),
        (("Nylon", "尼龙"), ("Carbon Fibre", "碳纤维"), ("Polyester", "涤纶")),
        (("2-person", "双人"), ("4-person", "四人"), ("Standard", "标准款")),
    ),
    Category(
        "Toys > Building Blocks",
        (("Building Block Set", "积木"), ("Model Kit", "拼装模型")),
        ("Brickly", "积趣", "Buildo", "匠心积木"),
        (29, 1299),
        (("1200 Pieces", "1200颗粒"), ("Ages 8+", "8岁以上"), ("Motorised", "电动")),
        (("ABS", "ABS"),),
        (("Small", "小号"), ("Large", "大号")),
    ),
    Category(
        "Grocery > Tea & Coffee",
        (("Green Tea", "绿茶"), ("Coffee Beans", "咖啡豆"), ("Oolong Tea", "乌龙茶")),
        ("Leafy", "茗香", "Roastery", "山茶坊"),
        (19, 599),
        (("Single Origin", "单一产地"), ("Organic", "有机"), ("Gift Box", "礼盒装")),
        (),
        (("250g", "250克"), ("500g", "500克")),
        has_color=False,
    ),
    Category(
        "Pets > Cat & Dog",
        (("Cat Food", "猫粮"), ("Dog Food", "狗粮"), ("Cat Litter", "猫砂")),
        ("Pawsy", "萌宠", "Furfeast", "毛孩"),
        (29, 599),
        (("Grain-free", "无谷"), ("High Protein", "高蛋白"), ("Low Dust", "低粉尘")),
        (),
        (("2kg", "2公斤"), ("5kg", "5公斤"), ("10kg", "10公斤")),
        has_color=False,
    ),
    Category(
        "Books > Fiction",
        (("Novel", "小说"), ("Short Story Collection", "短篇小说集")),
        ("Inkwell Press", "墨香出版社", "Lantern Books", "青灯文库"),
        (19, 199),
        (("Hardcover", "精装"), ("Paperback", "平装"), ("Award Winner", "获奖作品")),
        (),
        (),
        has_color=False,
    ),
    Category(
        "Baby > Feeding",
        (("Baby Bottle", "奶瓶"), ("High Chair", "宝宝餐椅"), ("Bottle Warmer", "暖奶器")),
        ("Tinytot", "贝贝乐", "Nurtura", "童安"),
        (29, 999),
        (("BPA-free", "不含双酚A"), ("Anti-colic", "防胀气"), ("Foldable", "可折叠")),
        (("Glass", "玻璃"), ("Silicone", "硅胶"), ("PP", "PP材质")),
        (("150ml", "150毫升"), ("240ml", "240毫升")),
    ),
)

COLORS: tuple[tuple[str, str], ...] = (
    ("Black", "黑色"),
    ("White", "白色"),
    ("Grey", "灰色"),
    ("Navy", "藏青色"),
    ("Red", "红色"),
    ("Pink", "粉色"),
    ("Green", "绿色"),
    ("Beige", "米色"),
    ("Blue", "蓝色"),
    ("Silver", "银色"),
)

ADJECTIVES: tuple[tuple[str, str], ...] = (
    ("Premium", "高端"),
    ("Lightweight", "轻量"),
    ("Classic", "经典"),
    ("Compact", "小巧"),
    ("Portable", "便携"),
    ("Ultra-thin", "超薄"),
    ("Durable", "耐用"),
    ("Minimalist", "简约"),
    ("Professional", "专业"),
    ("Eco-friendly", "环保"),
    ("New", "新款"),
    ("Deluxe", "豪华"),
)

# Description sentences; {noun} {feature} {material} {brand} {use} are filled in.
DESC_EN: tuple[str, ...] = (
    "The {brand} {noun} combines {feature} with a clean, modern design.",
    "Made of {material} for everyday durability.",
    "Ideal for {use}.",
    "Backed by the {brand} one-year warranty.",
    "A thoughtful gift that is easy to love.",
    "Customers choose it for its {feature} and reliable build.",
)
DESC_ZH: tuple[str, ...] = (
    "{brand}{noun}，{feature}，外观简约时尚。",
    "采用{material}材质，经久耐用。",
    "适合{use}。",
    "享受{brand}官方一年质保。",
    "送礼自用两相宜。",
    "{feature}，做工扎实，口碑之选。",
)
USES: tuple[tuple[str, str], ...] = (
    ("daily use", "日常使用"),
    ("travel and commuting", "出行通勤"),
    ("home and office", "居家办公"),
    ("students", "学生党"),
    ("weekend adventures", "周末出游"),
)

# --- users ------------------------------------------------------------------------------
# (country code, share of users, preferred language, share that prefers zh)
COUNTRIES: tuple[tuple[str, float], ...] = (
    ("CN", 0.58),
    ("US", 0.12),
    ("GB", 0.05),
    ("DE", 0.04),
    ("JP", 0.04),
    ("SG", 0.05),
    ("AU", 0.04),
    ("CA", 0.04),
    ("FR", 0.04),
)
EMAIL_DOMAINS_CN: tuple[str, ...] = ("qq.com", "163.com", "126.com", "foxmail.com", "sina.com")
EMAIL_DOMAINS_INTL: tuple[str, ...] = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me")
NAMES_CN: tuple[str, ...] = (
    "wangwei",
    "lina",
    "zhangmin",
    "liuyang",
    "chenjing",
    "yangfan",
    "zhaolei",
    "huangli",
    "zhouxin",
    "wuhao",
    "xuting",
    "sunyu",
    "maqiang",
    "zhujie",
    "hujun",
    "guoxia",
    "linfeng",
    "hemei",
    "gaopeng",
    "luoyi",
)
NAMES_INTL: tuple[str, ...] = (
    "james",
    "olivia",
    "liam",
    "emma",
    "noah",
    "ava",
    "lucas",
    "mia",
    "ethan",
    "sophie",
    "leon",
    "hannah",
    "yuki",
    "haruto",
    "chloe",
    "jack",
    "amelia",
    "max",
    "lea",
    "daniel",
)

CN_CITIES: tuple[tuple[str, str], ...] = (
    ("上海市", "浦东新区"),
    ("北京市", "朝阳区"),
    ("广州市", "天河区"),
    ("深圳市", "南山区"),
    ("杭州市", "西湖区"),
    ("成都市", "武侯区"),
    ("南京市", "鼓楼区"),
    ("武汉市", "洪山区"),
)
CN_ROADS: tuple[str, ...] = ("张江路", "建国路", "天河北路", "科技园路", "文三路", "人民南路", "中山路", "珞喻路")
INTL_CITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "US": (("San Francisco, CA", "94107"), ("Austin, TX", "73301"), ("Seattle, WA", "98101")),
    "GB": (("London", "SW1A 1AA"), ("Manchester", "M1 1AE")),
    "DE": (("Berlin", "10115"), ("Munich", "80331")),
    "JP": (("Tokyo", "100-0001"), ("Osaka", "530-0001")),
    "SG": (("Singapore", "018956"),),
    "AU": (("Sydney NSW", "2000"), ("Melbourne VIC", "3000")),
    "CA": (("Toronto ON", "M5H 2N2"), ("Vancouver BC", "V6B 1A1")),
    "FR": (("Paris", "75001"), ("Lyon", "69001")),
}
INTL_STREETS: tuple[str, ...] = ("Market St", "Oak Avenue", "High Street", "King Road", "Maple Drive", "Harbour Way")

# --- reviews ----------------------------------------------------------------------------
ASPECTS: tuple[str, ...] = ("quality", "shipping", "price", "service")
ASPECTS_ZH: dict[str, str] = {"quality": "质量", "shipping": "物流", "price": "价格", "service": "服务"}

# Overall phrases by sentiment. Tests check generated reviews against these lists.
OVERALL: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "positive": (
            "Absolutely love it!",
            "Great purchase, would buy again.",
            "Exceeded my expectations.",
            "Highly recommend.",
            "Five stars, very happy.",
        ),
        "neutral": ("It's okay, nothing special.", "Average overall.", "Does the job, but could be better."),
        "negative": (
            "Very disappointed.",
            "Would not recommend.",
            "Waste of money.",
            "Returning it, not happy at all.",
        ),
    },
    "zh": {
        "positive": ("非常满意，推荐购买！", "好评！会回购的。", "超出预期，很喜欢。", "五星好评，值得入手。"),
        "neutral": ("一般般吧，还行。", "中规中矩。", "能用，但没有想象中好。"),
        "negative": ("非常失望，不推荐。", "差评，后悔买了。", "浪费钱，别买。", "已申请退货，很不满意。"),
    },
}
ASPECT_PHRASES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "en": {
        "quality": {
            "pos": ("The build quality is excellent.", "Feels sturdy and well made."),
            "neg": ("The quality is poor, it broke within a week.", "Feels cheap and flimsy."),
        },
        "shipping": {
            "pos": ("Delivery was fast, it arrived in two days.", "Shipping was quick and the box was intact."),
            "neg": ("Shipping took forever.", "The parcel arrived late and the box was crushed."),
        },
        "price": {
            "pos": ("Good value for the price.", "Very reasonable price for what you get."),
            "neg": ("Overpriced for this quality.", "Way too expensive for what it is."),
        },
        "service": {
            "pos": ("Customer service was helpful and friendly.", "The seller answered my questions quickly."),
            "neg": ("Customer service never replied.", "The seller was rude and unhelpful."),
        },
    },
    "zh": {
        "quality": {
            "pos": ("质量很好，做工精细。", "用料扎实，质量不错。"),
            "neg": ("质量太差了，用了一周就坏了。", "做工粗糙，质量堪忧。"),
        },
        "shipping": {
            "pos": ("物流很快，两天就到了。", "发货及时，包装完好。"),
            "neg": ("物流太慢了，等了快两周。", "快递很慢，盒子都压坏了。"),
        },
        "price": {
            "pos": ("性价比很高，价格实惠。", "这个价格很划算。"),
            "neg": ("价格偏贵，不值这个价。", "太贵了，性价比低。"),
        },
        "service": {
            "pos": ("客服态度很好，回复及时。", "商家服务周到，有问必答。"),
            "neg": ("客服态度差，问了半天没人理。", "售后推来推去，体验很差。"),
        },
    },
}
REVIEW_OPENERS: dict[str, tuple[str, ...]] = {
    "en": ("Bought this {noun} for myself.", "Got the {noun} as a gift.", "Ordered the {noun} last month.", ""),
    "zh": ("给自己买的{noun}。", "买来送人的{noun}。", "上个月下单的{noun}。", ""),
}
REVIEW_PII: dict[str, tuple[str, ...]] = {
    "en": ("Seller, please contact me at {email} about a replacement.", "Call me on {phone} if you need photos."),
    "zh": ("有问题请联系我：{phone}。", "商家看到请发邮件到{email}，谢谢。"),
}

# --- search -----------------------------------------------------------------------------
QUERY_MODIFIERS: dict[str, tuple[str, ...]] = {
    "en": ("{noun}", "cheap {noun}", "best {noun}", "{brand} {noun}", "{noun} {feature}", "{color} {noun}"),
    "zh": ("{noun}", "{noun} 便宜", "{brand}{noun}", "{noun}推荐", "{feature}{noun}", "{color}{noun}"),
}

# --- support chats ------------------------------------------------------------------------
# intent -> (weight, needs an order, {lang: customer openings}, {lang: agent replies}).
# Placeholders: {order_id} {item} {category} {days} {address}.
INTENTS: dict[str, tuple[float, bool, dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]] = {
    "track_order": (
        0.14,
        True,
        {
            "en": (
                "Where is my order {order_id}?",
                "Can you tell me the status of order {order_id}?",
                "hi, my package {order_id} hasn't arrived yet, where is it",
            ),
            "zh": (
                "我的订单{order_id}到哪了？",
                "请问订单{order_id}发货了吗？",
                "订单{order_id}怎么还没到，帮我查一下物流",
            ),
        },
        {
            "en": (
                (
                    "Order {order_id} has shipped and is on its way. "
                    "Domestic delivery usually takes 2-5 business days; you can follow it under My Orders."
                ),
            ),
            "zh": ("您的订单{order_id}已发货，国内一般2-5个工作日送达，可在“我的订单”中查看物流详情。",),
        },
    ),
    "cancel_order": (
        0.09,
        True,
        {
            "en": (
                "I want to cancel order {order_id}.",
                "How do I cancel my purchase {order_id}?",
                "please cancel {order_id}, I ordered the wrong one",
            ),
            "zh": ("我想取消订单{order_id}。", "订单{order_id}拍错了，能取消吗？", "怎么取消订单{order_id}？"),
        },
        {
            "en": (
                (
                    "Orders can be cancelled free of charge until they ship. "
                    "I have requested the cancellation of {order_id}; "
                    "the refund goes back to your original payment method within 3-5 business days."
                ),
            ),
            "zh": ("订单发货前可免费取消。已为您提交订单{order_id}的取消申请，款项将在3-5个工作日内原路退回。",),
        },
    ),
    "get_refund": (
        0.09,
        True,
        {
            "en": (
                "I returned order {order_id}, when do I get my money back?",
                "I'd like a refund for {order_id}.",
                "refund for order {order_id} please, the item was damaged",
            ),
            "zh": (
                "订单{order_id}我已经退回了，什么时候退款？",
                "我要申请订单{order_id}的退款。",
                "{order_id}收到的东西坏了，要退款",
            ),
        },
        {
            "en": (
                (
                    "Sorry about that. Once the return of {order_id} is received and checked, "
                    "the refund is issued to your original payment method within 3-5 business days."
                ),
            ),
            "zh": ("非常抱歉给您带来不便。订单{order_id}的退货签收并检验后，退款将在3-5个工作日内原路退回。",),
        },
    ),
    "change_shipping_address": (
        0.06,
        True,
        {
            "en": (
                "Can I change the delivery address of order {order_id} to {address}?",
                "I moved, please update the shipping address for {order_id}.",
            ),
            "zh": ("订单{order_id}的收货地址能改成{address}吗？", "我搬家了，请帮我修改订单{order_id}的收货地址。"),
        },
        {
            "en": (
                "The address can be changed until the order ships. I have updated the address of {order_id} for you.",
            ),
            "zh": ("订单发货前可以修改地址，已为您更新订单{order_id}的收货地址。",),
        },
    ),
    "payment_issue": (
        0.07,
        False,
        {
            "en": (
                "My card was charged twice.",
                "Payment keeps failing at checkout.",
                "I can't pay with PayPal, it shows an error",
            ),
            "zh": ("付款一直失败怎么办？", "我被扣了两次钱。", "微信支付提示错误，付不了款"),
        },
        {
            "en": (
                (
                    "Sorry for the trouble. We accept Alipay, WeChat Pay, UnionPay, Visa, "
                    "Mastercard and PayPal. A duplicate charge is released automatically within 3-7 business days; "
                    "if not, send us the transaction id."
                ),
            ),
            "zh": (
                "抱歉给您带来困扰。我们支持支付宝、微信支付、银联、Visa、Mastercard和PayPal。重复扣款一般会在3-7个工作日内自动退回，如未退回请提供交易单号。",
            ),
        },
    ),
    "delivery_period": (
        0.07,
        False,
        {
            "en": (
                "How long does delivery take?",
                "How many days until my parcel arrives if I order today?",
                "shipping time to {country}?",
            ),
            "zh": ("下单后几天能到？", "发货要多久？", "寄到{country}要几天？"),
        },
        {
            "en": (
                (
                    "Orders ship within 48 hours. Domestic delivery takes 2-5 business days, "
                    "international delivery 7-15 business days."
                ),
            ),
            "zh": ("订单48小时内发货，国内2-5个工作日送达，国际订单7-15个工作日送达。",),
        },
    ),
    "delivery_options": (
        0.04,
        False,
        {
            "en": ("What shipping options do you have?", "Do you offer express delivery?"),
            "zh": ("有哪些配送方式？", "可以发顺丰吗？"),
        },
        {
            "en": (
                (
                    "Standard shipping is free on orders over ¥99 (otherwise ¥10). "
                    "Express delivery costs ¥25 and arrives in 1-2 business days in mainland China."
                ),
            ),
            "zh": ("订单满99元包邮（不满收取10元运费）；快递加急25元，中国大陆1-2个工作日送达。",),
        },
    ),
    "check_refund_policy": (
        0.05,
        False,
        {
            "en": ("What is your return policy?", "Can I return something if I just don't like it?"),
            "zh": ("你们的退货政策是什么？", "不喜欢可以退吗？"),
        },
        {
            "en": (
                (
                    "You can return unused items within 7 days of delivery for any reason, "
                    "and within 30 days if the item is faulty. Refunds take 3-5 business days."
                ),
            ),
            "zh": ("签收后7天内商品未使用可无理由退货，质量问题30天内可退换。退款3-5个工作日到账。",),
        },
    ),
    "contact_customer_service": (
        0.05,
        False,
        {
            "en": ("How can I talk to a human agent?", "What are your customer service hours?"),
            "zh": ("怎么联系人工客服？", "客服几点上班？"),
        },
        {
            "en": (
                (
                    "Our agents are available every day from 9:00 to 21:00 (UTC+8) in this chat and "
                    "through the Contact us page."
                ),
            ),
            "zh": ("人工客服每天9:00-21:00（北京时间）在线，也可通过“联系我们”页面留言。",),
        },
    ),
    "complaint": (
        0.07,
        True,
        {
            "en": (
                "I'm really unhappy with order {order_id}, the {item} arrived damaged.",
                "This is the second time order {order_id} is late. Unacceptable.",
            ),
            "zh": ("订单{order_id}收到的{item}是坏的，太让人失望了！", "订单{order_id}又延迟了，我要投诉。"),
        },
        {
            "en": (
                (
                    "I'm very sorry about your experience with {order_id}. "
                    "I've escalated it and we will send a replacement or a full refund, whichever you prefer."
                ),
            ),
            "zh": ("非常抱歉给您带来不好的体验，订单{order_id}的问题已升级处理，可以为您换新或全额退款，请您选择。",),
        },
    ),
    "product_question": (
        0.1,
        False,
        {
            "en": (
                "Is the {item} waterproof?",
                "Does the {item} come with a warranty?",
                "what material is the {item} made of?",
            ),
            "zh": ("{item}有质保吗？", "请问{item}是什么材质的？", "{item}有现货吗？"),
        },
        {
            "en": (
                (
                    "Thanks for asking! The {item} comes with a one-year warranty; "
                    "the full specifications are on the product page."
                ),
            ),
            "zh": ("感谢咨询！{item}享受一年质保，详细参数请见商品详情页。",),
        },
    ),
    "recommendation_request": (
        0.08,
        False,
        {
            "en": ("Can you recommend a good {category} under ¥500?", "Looking for {category}, what's popular?"),
            "zh": ("能推荐一款{category}吗？预算500以内。", "想买{category}，哪款卖得好？"),
        },
        {
            "en": ("Sure! Our best-selling {category} right now is the {item}. Would you like more options?",),
            "zh": ("好的！目前最受欢迎的{category}是{item}，需要我再推荐几款吗？",),
        },
    ),
    "recover_password": (
        0.04,
        False,
        {
            "en": ("I forgot my password.", "I can't log in to my account."),
            "zh": ("我忘记密码了。", "账号登录不上怎么办？"),
        },
        {
            "en": (
                "Please use 'Forgot password' on the sign-in page; we will send a reset link to your registered email.",
            ),
            "zh": ("请在登录页点击“忘记密码”，我们会向您的注册邮箱发送重置链接。",),
        },
    ),
    "chitchat": (
        0.05,
        False,
        {
            "en": ("hello", "Hi there, are you a bot?", "thanks, have a nice day"),
            "zh": ("你好", "在吗？", "谢谢，辛苦了"),
        },
        {
            "en": ("Hello! I'm the shop assistant. How can I help you today?",),
            "zh": ("您好！我是店铺助手，请问有什么可以帮您？",),
        },
    ),
}
FOLLOW_UPS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("Thanks for the help!", "You're welcome! Anything else I can do for you?"),
        ("OK, got it.", "Great, have a nice day!"),
    ),
    "zh": (("好的，谢谢！", "不客气，还有其他可以帮您的吗？"), ("明白了。", "祝您生活愉快！")),
}
CHAT_PII: dict[str, tuple[str, ...]] = {
    "en": ("My email is {email}.", "You can reach me at {phone}."),
    "zh": ("我的手机号是{phone}。", "我的邮箱是{email}。"),
}
COUNTRY_NAMES: dict[str, tuple[str, str]] = {
    "CN": ("China", "中国"),
    "US": ("the US", "美国"),
    "GB": ("the UK", "英国"),
    "DE": ("Germany", "德国"),
    "JP": ("Japan", "日本"),
    "SG": ("Singapore", "新加坡"),
    "AU": ("Australia", "澳大利亚"),
    "CA": ("Canada", "加拿大"),
    "FR": ("France", "法国"),
}
