"""Synthetic demo data for Cornerstore: made-up shops, sales, stock counts and payments.

This module is for demos, local development and tests only. Every shop, customer,
price and event in it is invented; none of it describes a real business or person,
and nothing here should ever be loaded into a production hub as if it were real.

The generator builds roughly fifty small neighbourhood shops in Chinese cities and
simulates a few weeks of trading for each of them. The output is a list of
:class:`DemoShop` objects whose ``sales``, ``inventory`` and ``payments`` lists hold
the JSON bodies a shop connector would post to the hub, so they contain only ``str``
and ``int`` values and RFC 3339 timestamps with a ``+08:00`` offset.

The simulation keeps a few invariants that demos and tests can rely on:

* The output is fully determined by the arguments. The same ``seed``, ``shops``,
  ``days`` and ``end`` always produce the same records, and the data for shop *n*
  does not depend on how many shops were requested after it.
* Sales lines are grouped into baskets. Each basket produces exactly one payment
  whose ``amount_cents`` equals the sum of ``quantity * unit_price_cents`` over its
  lines. All lines of a basket share the payment's ``occurred_at`` value, and that
  timestamp is unique within a shop, so a consumer can rebuild baskets by joining
  sales to payments on it.
* Inventory is counted once per stocked SKU at the close of every trading day. The
  counts go down by exactly the quantities sold and go back up when a delivery
  arrives before opening every few days. Deliveries themselves are not emitted, and
  a shop never sells more than it has on hand, so short stock shows up as smaller
  or missing lines rather than as negative counts.

Only the standard library is used, and the module performs no I/O.
"""

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

__all__ = ["CATALOGUE", "CatalogueItem", "DemoShop", "generate", "total_records"]


# All shops trade on China Standard Time, which has no daylight saving.
_CHINA_TZ = timezone(timedelta(hours=8))

# The default end of the window is fixed so that calling generate() without
# arguments is reproducible no matter when it runs.
_DEFAULT_END = datetime(2026, 11, 20, tzinfo=_CHINA_TZ)


@dataclass(frozen=True)
class CatalogueItem:
    """One grocery product that demo shops may stock, with its list price in fen."""

    sku: str
    name_zh: str
    name_en: str
    price_cents: int


@dataclass(frozen=True)
class DemoShop:
    """One invented shop together with the connector records it would post."""

    name: str
    district: str
    sales: list[dict[str, object]]
    inventory: list[dict[str, object]]
    payments: list[dict[str, object]]


# Each row is (sku, Chinese name, English name, list price in fen, relative
# popularity, largest quantity one customer usually buys, day part). The day part
# is "morning" for breakfast items, "evening" for drinks and snacks that sell after
# work, and "" for items with no particular time of day.
_CATALOGUE_ROWS: tuple[tuple[str, str, str, int, float, int, str], ...] = (
    ("SKU-WATER-NFS-550", "农夫山泉饮用天然水 550ml", "Nongfu Spring Natural Water 550ml",
     200, 10.0, 6, ""),
    ("SKU-WATER-CBY-555", "怡宝纯净水 555ml", "C'estbon Purified Water 555ml",
     200, 7.0, 6, ""),
    ("SKU-NOODLE-KSF-BEEF", "康师傅红烧牛肉面", "Master Kong Braised Beef Noodles",
     350, 8.0, 4, ""),
    ("SKU-NOODLE-TY-PICKLE", "统一老坛酸菜牛肉面", "Uni-President Pickled Cabbage Beef Noodles",
     350, 6.0, 4, ""),
    ("SKU-TEA-KSF-ICE-500", "康师傅冰红茶 500ml", "Master Kong Iced Black Tea 500ml",
     350, 6.0, 3, ""),
    ("SKU-TEA-NFS-JASMINE-500", "东方树叶茉莉花茶 500ml", "Nongfu Oriental Leaf Jasmine Tea 500ml",
     550, 4.0, 2, ""),
    ("SKU-COLA-COKE-330", "可口可乐 330ml 罐装", "Coca-Cola 330ml Can",
     300, 6.0, 6, ""),
    ("SKU-SODA-SPRITE-500", "雪碧 500ml", "Sprite 500ml",
     350, 4.0, 3, ""),
    ("SKU-TEA-WLJ-310", "王老吉凉茶 310ml", "Wong Lo Kat Herbal Tea 310ml",
     400, 4.0, 6, ""),
    ("SKU-ENERGY-REDBULL-250", "红牛维生素功能饮料 250ml", "Red Bull Energy Drink 250ml",
     600, 3.0, 2, ""),
    ("SKU-SODA-GENKI-480", "元气森林苏打气泡水 480ml", "Genki Forest Sparkling Water 480ml",
     550, 4.0, 2, ""),
    ("SKU-MILK-YILI-250", "伊利纯牛奶 250ml", "Yili Pure Milk 250ml",
     350, 6.0, 4, "morning"),
    ("SKU-MILK-MENGNIU-250", "蒙牛纯牛奶 250ml", "Mengniu Pure Milk 250ml",
     350, 5.0, 4, "morning"),
    ("SKU-YOGURT-AMX-205", "安慕希希腊风味酸奶 205g", "Ambrosial Greek-Style Yogurt 205g",
     650, 4.0, 2, "morning"),
    ("SKU-MILK-WAHAHA-AD-220", "娃哈哈AD钙奶 220g", "Wahaha AD Calcium Milk 220g",
     300, 3.0, 4, ""),
    ("SKU-BREAD-TOLY-SLICED", "桃李醇熟切片面包", "Toly Sliced White Bread",
     950, 4.0, 1, "morning"),
    ("SKU-EGG-FRESH-10", "新鲜鸡蛋 10枚装", "Fresh Eggs 10-Pack",
     1290, 3.0, 1, "morning"),
    ("SKU-PICKLE-WUJIANG-80", "乌江涪陵榨菜 80g", "Wujiang Fuling Pickled Mustard 80g",
     250, 3.0, 3, "morning"),
    ("SKU-SNACK-LAYS-70", "乐事原味薯片 70g", "Lay's Classic Potato Chips 70g",
     850, 4.0, 2, "evening"),
    ("SKU-SNACK-WANTWANT-52", "旺旺仙贝 52g", "Want Want Rice Crackers 52g",
     600, 3.0, 2, ""),
    ("SKU-SNACK-WEILONG-106", "卫龙大面筋 106g", "Weilong Spicy Gluten Strips 106g",
     550, 4.0, 3, "evening"),
    ("SKU-BISCUIT-OREO-97", "奥利奥原味夹心饼干 97g", "Oreo Original Sandwich Cookies 97g",
     850, 3.0, 2, ""),
    ("SKU-NUTS-3SQ-DAILY-25", "三只松鼠每日坚果 25g", "Three Squirrels Daily Nuts 25g",
     450, 2.0, 3, ""),
    ("SKU-SAUSAGE-SHUANGHUI", "双汇王中王火腿肠", "Shuanghui Premium Ham Sausage",
     250, 5.0, 4, ""),
    ("SKU-CHOC-DOVE-43", "德芙丝滑牛奶巧克力 43g", "Dove Silky Milk Chocolate 43g",
     990, 2.0, 2, "evening"),
    ("SKU-GUM-EXTRA-BOTTLE", "益达木糖醇口香糖 瓶装", "Extra Xylitol Chewing Gum Bottle",
     1190, 2.0, 1, ""),
    ("SKU-ICECREAM-YILI-CHOCLIZ", "伊利巧乐兹雪糕", "Yili Chocliz Ice Cream Bar",
     500, 1.5, 3, "evening"),
    ("SKU-DUMPLING-SANQUAN-500", "三全猪肉白菜水饺 500g", "Sanquan Pork & Cabbage Dumplings 500g",
     1590, 2.0, 1, "evening"),
    ("SKU-RICE-WUCHANG-5KG", "五常大米 5kg", "Wuchang Rice 5kg",
     5990, 1.0, 1, ""),
    ("SKU-OIL-ARAWANA-1800", "金龙鱼调和油 1.8L", "Arawana Blended Cooking Oil 1.8L",
     2590, 1.0, 1, ""),
    ("SKU-SOY-HADAY-500", "海天生抽 500ml", "Haday Light Soy Sauce 500ml",
     790, 2.0, 1, ""),
    ("SKU-VINEGAR-HENGSHUN-500", "恒顺香醋 500ml", "Hengshun Zhenjiang Vinegar 500ml",
     650, 1.5, 1, ""),
    ("SKU-CHILI-LAOGANMA-280", "老干妈风味豆豉 280g", "Lao Gan Ma Chili Crisp 280g",
     1150, 2.0, 1, ""),
    ("SKU-TISSUE-BREEZE-3P", "清风抽纸 3包装", "Breeze Facial Tissues 3-Pack",
     1190, 2.0, 1, ""),
    ("SKU-TISSUE-HEARTTEX-10P", "心相印手帕纸 10包", "Hearttex Pocket Tissues 10-Pack",
     590, 2.0, 1, ""),
    ("SKU-SOAP-SAFEGUARD-115", "舒肤佳香皂 115g", "Safeguard Bar Soap 115g",
     650, 1.0, 2, ""),
    ("SKU-TOOTHPASTE-YNBY-120", "云南白药牙膏 120g", "Yunnan Baiyao Toothpaste 120g",
     2990, 1.0, 1, ""),
    ("SKU-DISHSOAP-LIBY-1KG", "立白洗洁精 1kg", "Liby Dishwashing Liquid 1kg",
     1090, 1.0, 1, ""),
    ("SKU-BATTERY-NANFU-AA2", "南孚碱性电池 5号 2粒", "Nanfu Alkaline AA Batteries 2-Pack",
     590, 1.0, 2, ""),
    ("SKU-BEER-TSINGTAO-500", "青岛啤酒经典 500ml", "Tsingtao Classic Beer 500ml",
     600, 5.0, 6, "evening"),
    ("SKU-BEER-SNOW-500", "雪花啤酒勇闯天涯 500ml", "Snow Beer Brave the World 500ml",
     500, 4.0, 6, "evening"),
    ("SKU-BAIJIU-REDSTAR-100", "红星二锅头 100ml", "Red Star Erguotou Baijiu 100ml",
     700, 2.0, 2, "evening"),
)  # fmt: skip

# The public catalogue exposes only the product facts; the sales model stays private.
CATALOGUE: tuple[CatalogueItem, ...] = tuple(
    CatalogueItem(sku=row[0], name_zh=row[1], name_en=row[2], price_cents=row[3])
    for row in _CATALOGUE_ROWS
)
_POPULARITY: tuple[float, ...] = tuple(row[4] for row in _CATALOGUE_ROWS)
_MAX_QUANTITY: tuple[int, ...] = tuple(row[5] for row in _CATALOGUE_ROWS)
_DAY_PART: tuple[str, ...] = tuple(row[6] for row in _CATALOGUE_ROWS)

# Surnames are paired with their usual romanisation so that family-run shop names
# read naturally in both languages.
_SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"),
    ("杨", "Yang"), ("黄", "Huang"), ("赵", "Zhao"), ("周", "Zhou"), ("吴", "Wu"),
    ("徐", "Xu"), ("孙", "Sun"), ("马", "Ma"), ("胡", "Hu"), ("朱", "Zhu"),
    ("郭", "Guo"), ("何", "He"), ("林", "Lin"), ("罗", "Luo"), ("高", "Gao"),
)  # fmt: skip

# Each pattern turns a surname pair into a bilingual family shop name.
_FAMILY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("{zh}记便利店", "{en}'s Corner Store"),
    ("{zh}记小卖部", "{en}'s Tuck Shop"),
    ("{zh}家杂货铺", "{en} Family Grocery"),
    ("老{zh}超市", "Old {en}'s Mini Mart"),
    ("{zh}姐副食店", "Sister {en}'s Provisions"),
)

# These shops have descriptive names instead of a family name.
_THEMED_NAMES: tuple[tuple[str, str], ...] = (
    ("好邻居便利店", "Good Neighbour Convenience"),
    ("幸福小超市", "Happiness Mini Mart"),
    ("阳光杂货铺", "Sunshine Grocery"),
    ("家家乐超市", "Jiajiale Supermarket"),
    ("邻里百货", "Neighbourly General Store"),
    ("快乐小铺", "Happy Little Shop"),
    ("街角小店", "Street Corner Shop"),
    ("便民商店", "Convenience For All"),
    ("四季鲜便利", "Four Seasons Fresh Mart"),
    ("弄堂口小卖部", "Alley Mouth Tuck Shop"),
    ("红星副食", "Red Star Provisions"),
    ("万家福超市", "Wanjiafu Mini Market"),
    ("金桥便利", "Golden Bridge Mart"),
    ("平安小超市", "Ping'an Mini Mart"),
    ("社区好店", "Community Good Shop"),
)

_DISTRICTS: tuple[str, ...] = (
    "Hangzhou · Xihu", "Hangzhou · Gongshu", "Shanghai · Xuhui", "Shanghai · Putuo",
    "Beijing · Chaoyang", "Beijing · Haidian", "Chengdu · Wuhou", "Chengdu · Jinjiang",
    "Guangzhou · Tianhe", "Guangzhou · Yuexiu", "Shenzhen · Nanshan", "Shenzhen · Futian",
    "Wuhan · Wuchang", "Nanjing · Gulou", "Xi'an · Beilin", "Chongqing · Yuzhong",
    "Suzhou · Gusu", "Changsha · Yuelu", "Tianjin · Heping", "Xiamen · Siming",
)  # fmt: skip

# Relative footfall for each local hour of the day. Mornings, lunch and especially
# the evening after work are busier than mid-afternoon and late night.
_HOUR_WEIGHTS: dict[int, float] = {
    6: 1.5, 7: 3.0, 8: 5.0, 9: 4.0, 10: 3.0, 11: 4.0, 12: 5.0, 13: 4.0, 14: 3.0,
    15: 3.0, 16: 4.0, 17: 6.0, 18: 8.0, 19: 8.0, 20: 7.0, 21: 5.0, 22: 3.0, 23: 1.5,
}  # fmt: skip

# Traffic multipliers by weekday, where Monday is 0. Friday evening and the
# weekend are busier than the rest of the week.
_WEEKDAY_FACTORS: tuple[float, ...] = (1.0, 0.95, 1.0, 1.0, 1.1, 1.3, 1.25)

# The number of lines in a basket follows these weights for one to five lines.
_LINE_COUNT_WEIGHTS: tuple[float, ...] = (45.0, 28.0, 15.0, 8.0, 4.0)

# About three quarters of payments are QR code payments, as in most Chinese shops.
_METHODS: tuple[str, ...] = ("qr", "cash", "card")
_METHOD_WEIGHTS: tuple[float, ...] = (0.75, 0.17, 0.08)

# A cash payer cannot be identified, so cash payments carry this fixed handle.
_ANONYMOUS_PAYER = "anonymous"

_MIN_BASKETS_PER_DAY = 10
_MAX_BASKETS_PER_DAY = 80


@dataclass(frozen=True)
class _Customer:
    """A shopper with a stable QR wallet handle, a card token and a habitual method."""

    qr_handle: str
    card_handle: str
    preferred_method: str


@dataclass(frozen=True)
class _Segment:
    """A stretch of opening time within one clock hour, in seconds after midnight."""

    start: int
    length: int
    hour: int


def _format_time(moment: datetime) -> str:
    """Return an RFC 3339 timestamp in China Standard Time with whole seconds."""
    return moment.astimezone(_CHINA_TZ).replace(microsecond=0).isoformat()


def _shop_names(rng: random.Random, count: int) -> list[str]:
    """Return ``count`` distinct bilingual shop names in a seeded order.

    The whole pool is shuffled before slicing, so the first names do not depend on
    how many are requested. If more shops are requested than the pool holds, later
    shops reuse a name with a branch number, which keeps every name distinct.
    """
    pool = [
        f"{zh.format(zh=s_zh)} {en.format(en=s_en)}"
        for s_zh, s_en in _SURNAMES
        for zh, en in _FAMILY_PATTERNS
    ]
    pool.extend(f"{zh} {en}" for zh, en in _THEMED_NAMES)
    rng.shuffle(pool)
    names: list[str] = []
    for index in range(count):
        base = pool[index % len(pool)]
        branch = index // len(pool) + 1
        names.append(base if branch == 1 else f"{base} {branch}号店 Branch {branch}")
    return names


def _new_customer(rng: random.Random) -> _Customer:
    """Create a pseudonymous shopper with a WeChat Pay or Alipay handle."""
    if rng.random() < 0.55:
        qr_handle = f"wx_{rng.getrandbits(24):06x}"
    else:
        qr_handle = f"alipay_2088{rng.randrange(10**12):012d}"
    card_handle = f"card_{rng.getrandbits(32):08x}"
    preferred = rng.choices(_METHODS, weights=_METHOD_WEIGHTS)[0]
    return _Customer(qr_handle=qr_handle, card_handle=card_handle, preferred_method=preferred)


def _opening_segments(opens_at: int, closes_at: int) -> list[_Segment]:
    """Split the opening hours, given in seconds after midnight, into hourly segments."""
    segments: list[_Segment] = []
    for hour in range(opens_at // 3600, math.ceil(closes_at / 3600)):
        start = max(opens_at, hour * 3600)
        stop = min(closes_at, (hour + 1) * 3600)
        if stop > start:
            segments.append(_Segment(start=start, length=stop - start, hour=hour))
    return segments


def _daypart_multiplier(day_part: str, hour: int) -> float:
    """Return how much more likely an item is to be bought at the given hour."""
    if hour < 10:
        return {"morning": 3.0, "evening": 0.3}.get(day_part, 1.0)
    if hour >= 18:
        return {"morning": 0.5, "evening": 2.5}.get(day_part, 1.0)
    return 1.0


def _cumulative(weights: list[float]) -> list[float]:
    """Return running totals, which random.choices accepts as cum_weights."""
    totals: list[float] = []
    running = 0.0
    for weight in weights:
        running += weight
        totals.append(running)
    return totals


class _ShopSim:
    """One shop's trading, simulated day by day.

    Every draw comes from the shop's own generator, in a fixed order, so a
    shop's data depend only on the run seed and its number.
    """

    def __init__(self, seed: int, shop_no: int, start: datetime, end: datetime) -> None:
        # Each shop has its own generator, seeded from the run seed and the shop number,
        # so that its data is independent of every other shop.
        rng = self.rng = random.Random(f"cornerstore-demo:{seed}:{shop_no}")
        self.shop_no, self.start, self.end = shop_no, start, end
        self.district = rng.choice(_DISTRICTS)

        # The shop's size sets its typical number of baskets per day, skewed towards
        # smaller shops, and its opening hours vary a little around 07:00 to 23:00.
        self.base_baskets = 10 + 58 * rng.random() ** 1.4
        opens_at = rng.choice((6 * 3600 + 1800, 7 * 3600, 7 * 3600, 7 * 3600 + 1800, 8 * 3600))
        self.closes_at = rng.choice(
            (22 * 3600, 22 * 3600 + 1800, 23 * 3600, 23 * 3600, 23 * 3600 + 1800)
        )
        self.segments = _opening_segments(opens_at, self.closes_at)
        self.segment_cum = _cumulative(
            [_HOUR_WEIGHTS.get(s.hour, 1.0) * s.length for s in self.segments]
        )

        # The shop stocks a random subset of the catalogue and charges its own prices,
        # rounded to the nearest half yuan as small shop owners usually do.
        self.stocked = sorted(rng.sample(range(len(CATALOGUE)), rng.randint(20, 35)))
        markup = rng.uniform(0.95, 1.12)
        self.prices = {
            item: max(50, round(CATALOGUE[item].price_cents * markup / 50) * 50)
            for item in self.stocked
        }

        # Item choice depends on the time of day, so there is one weight table for
        # mornings, one for the middle of the day and one for evenings.
        self.cum_by_period = {
            period: _cumulative(
                [
                    _POPULARITY[item] * _daypart_multiplier(_DAY_PART[item], hour)
                    for item in self.stocked
                ]
            )
            for period, hour in (("morning", 8), ("day", 12), ("evening", 19))
        }
        self._stock_up()

        # Regular customers come back often and in very different amounts, while a
        # share of baskets comes from passers-by who are never seen again.
        self.regulars = [_new_customer(rng) for _ in range(max(15, round(self.base_baskets * 3)))]
        self.regular_cum = _cumulative([min(20.0, rng.paretovariate(1.3)) for _ in self.regulars])
        self.regular_share = rng.uniform(0.5, 0.7)

        self.sales: list[dict[str, object]] = []
        self.inventory: list[dict[str, object]] = []
        self.payments: list[dict[str, object]] = []

    def _stock_up(self) -> None:
        """Par levels cover the expected demand until the next delivery plus a margin.

        Deliveries arrive every few days before opening and top every item up to par.
        """
        rng = self.rng
        self.restock_every = rng.randint(2, 4)
        self.restock_phase = rng.randrange(self.restock_every)
        total_popularity = sum(_POPULARITY[item] for item in self.stocked)
        mean_lines = sum((n + 1) * w for n, w in enumerate(_LINE_COUNT_WEIGHTS)) / sum(
            _LINE_COUNT_WEIGHTS
        )
        self.par: dict[int, int] = {}
        for item in self.stocked:
            largest = _MAX_QUANTITY[item]
            mean_quantity = 1.0 if largest == 1 else 0.7 + 0.3 * (2 + largest) / 2
            daily = (
                self.base_baskets
                * 1.09
                * mean_lines
                * _POPULARITY[item]
                / total_popularity
                * mean_quantity
            )
            self.par[item] = math.ceil(daily * (self.restock_every + 1) * rng.uniform(1.0, 1.4)) + 3
        self.on_hand = {
            item: round(self.par[item] * rng.uniform(0.5, 1.0)) for item in self.stocked
        }

    def run(self) -> None:
        first_day = self.start.date()
        last_day = (self.end - timedelta(microseconds=1)).date()
        day_count = (last_day - first_day).days + 1 if self.end > self.start else 0
        for day_index in range(day_count):
            self._day(day_index, first_day + timedelta(days=day_index))

    def _day(self, day_index: int, day: date) -> None:
        rng = self.rng
        midnight = datetime(day.year, day.month, day.day, tzinfo=_CHINA_TZ)
        if (day_index + self.restock_phase) % self.restock_every == 0:
            for item in self.stocked:
                # A supplier occasionally misses an item, which leaves it short.
                if rng.random() < 0.95:
                    self.on_hand[item] = max(self.on_hand[item], self.par[item])

        # Daily traffic follows the shop size, the weekday and some day-to-day noise.
        expected = self.base_baskets * _WEEKDAY_FACTORS[day.weekday()] * rng.gauss(1.0, 0.12)
        basket_count = min(_MAX_BASKETS_PER_DAY, max(_MIN_BASKETS_PER_DAY, round(expected)))

        # Checkout times are unique to the second within a shop, which lets a
        # consumer match a basket's sales lines to its payment.
        seconds: set[int] = set()
        segment_indices = range(len(self.segments))
        while len(seconds) < basket_count:
            segment = self.segments[rng.choices(segment_indices, cum_weights=self.segment_cum)[0]]
            seconds.add(segment.start + rng.randrange(segment.length))
        for second in sorted(seconds):
            moment = midnight + timedelta(seconds=second)
            if self.start <= moment < self.end:
                self._basket(moment, second // 3600)

        # The owner counts every stocked item at closing time. A count that would
        # fall after the end of the window is left out.
        counted_at = midnight + timedelta(seconds=self.closes_at)
        if self.start <= counted_at < self.end:
            counted_text = _format_time(counted_at)
            for item in self.stocked:
                self.inventory.append(
                    {
                        "sku": CATALOGUE[item].sku,
                        "on_hand": self.on_hand[item],
                        "counted_at": counted_text,
                    }
                )

    def _basket(self, moment: datetime, hour: int) -> None:
        rng = self.rng
        lines = self._lines("morning" if hour < 10 else "evening" if hour >= 18 else "day")
        if not lines:
            return
        timestamp = _format_time(moment)
        amount = 0
        for item, quantity in lines:
            amount += quantity * self.prices[item]
            self.sales.append(
                {
                    "event_id": f"S-{self.shop_no:03d}-{len(self.sales) + 1:06d}",
                    "occurred_at": timestamp,
                    "sku": CATALOGUE[item].sku,
                    "quantity": quantity,
                    "unit_price_cents": self.prices[item],
                    "currency": "CNY",
                }
            )
        customer = (
            self.regulars[rng.choices(range(len(self.regulars)), cum_weights=self.regular_cum)[0]]
            if rng.random() < self.regular_share
            else _new_customer(rng)
        )
        # People mostly pay the way they always do, but not every time.
        method = (
            customer.preferred_method
            if rng.random() < 0.9
            else rng.choices(_METHODS, weights=_METHOD_WEIGHTS)[0]
        )
        payer_ref = {
            "qr": customer.qr_handle,
            "card": customer.card_handle,
        }.get(method, _ANONYMOUS_PAYER)
        self.payments.append(
            {
                "event_id": f"P-{self.shop_no:03d}-{len(self.payments) + 1:06d}",
                "occurred_at": timestamp,
                "amount_cents": amount,
                "method": method,
                "payer_ref": payer_ref,
            }
        )

    def _lines(self, period: str) -> list[tuple[int, int]]:
        """A basket's items and quantities, as far as the shelves allow."""
        rng, stocked = self.rng, self.stocked
        item_cum = self.cum_by_period[period]
        line_count = rng.choices(range(1, 6), weights=_LINE_COUNT_WEIGHTS)[0]
        chosen: list[int] = []
        while len(chosen) < line_count:
            item = stocked[rng.choices(range(len(stocked)), cum_weights=item_cum)[0]]
            if item not in chosen:
                chosen.append(item)
        # A shop cannot sell what it does not have, so lines shrink or drop out
        # when the shelf runs low.
        lines: list[tuple[int, int]] = []
        for item in chosen:
            largest = _MAX_QUANTITY[item]
            wanted = 1 if largest == 1 or rng.random() < 0.7 else rng.randint(2, largest)
            quantity = min(wanted, self.on_hand[item])
            if quantity > 0:
                self.on_hand[item] -= quantity
                lines.append((item, quantity))
        return lines


def _generate_shop(seed: int, shop_no: int, name: str, start: datetime, end: datetime) -> DemoShop:
    """Simulate one shop's trading between ``start`` (inclusive) and ``end`` (exclusive)."""
    shop = _ShopSim(seed, shop_no, start, end)
    shop.run()
    return DemoShop(
        name=name,
        district=shop.district,
        sales=shop.sales,
        inventory=shop.inventory,
        payments=shop.payments,
    )


def generate(
    seed: int = 7, shops: int = 50, days: int = 21, end: datetime | None = None
) -> list[DemoShop]:
    """Generate deterministic demo data for ``shops`` shops over ``days`` days.

    The window is ``[end - days, end)``. When ``end`` is omitted it is fixed at
    2026-11-20T00:00:00+08:00 so that the output never depends on the clock. A
    naive ``end`` is read as China Standard Time, and an aware one is converted to
    it; all timestamps in the output use the ``+08:00`` offset.
    """
    if shops < 0:
        raise ValueError("shops must not be negative")
    if days < 0:
        raise ValueError("days must not be negative")
    if end is None:
        end = _DEFAULT_END
    elif end.tzinfo is None:
        end = end.replace(tzinfo=_CHINA_TZ)
    end = end.astimezone(_CHINA_TZ)
    start = end - timedelta(days=days)

    names = _shop_names(random.Random(f"cornerstore-demo:{seed}:names"), shops)
    return [
        _generate_shop(seed, shop_no, names[shop_no - 1], start, end)
        for shop_no in range(1, shops + 1)
    ]


def total_records(shops: list[DemoShop]) -> dict[str, int]:
    """Count the sales, inventory and payment records across the given shops."""
    return {
        "sales": sum(len(shop.sales) for shop in shops),
        "inventory": sum(len(shop.inventory) for shop in shops),
        "payments": sum(len(shop.payments) for shop in shops),
    }
