"""Valid identifiers for simulated people and things: ID numbers, plates, credit codes.

Every function draws from the ``random.Random`` it is given, never from the global one, so
a seed always yields the same identifiers. The values pass the same validators the
registry's schemas use (``anju.core.validation``).
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

from stdnum.cn import ric, uscc

DIGITS = "0123456789"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # GA 36: never I or O
NEW_ENERGY_SMALL = "DF"  # D: battery electric, F: hybrid (small new-energy plates)
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714 organisation code weights


@dataclass(frozen=True)
class Region:
    """A county-level administrative code (行政区划代码) and its household-address text."""

    code: str
    address: str


# Guangdong codes for people registered near a Shenzhen community. The old codes (442xxx,
# 4401 2x) were retired in the 1980s and 1990s: older people's ID numbers still carry them.
LOCAL_REGIONS: tuple[Region, ...] = (
    Region("440305", "广东省深圳市南山区"),
    Region("440304", "广东省深圳市福田区"),
    Region("440306", "广东省深圳市宝安区"),
    Region("440106", "广东省广州市天河区"),
    Region("440104", "广东省广州市越秀区"),
    Region("441302", "广东省惠州市惠城区"),
    Region("445202", "广东省揭阳市榕城区"),
    Region("441881", "广东省清远市英德市"),
    Region("440513", "广东省汕头市潮阳区"),
    Region("442421", "广东省梅州市梅县区"),
    Region("442501", "广东省惠州市惠城区"),
    Region("442526", "广东省惠州市博罗县"),
    Region("442528", "广东省惠州市惠东县"),
    Region("442325", "广东省汕头市潮阳区"),
    Region("442326", "广东省揭阳市揭东区"),
    Region("440121", "广东省广州市花都区"),
    Region("440126", "广东省广州市番禺区"),
)

# Where the floating population (流动人口) typically comes from.
OTHER_REGIONS: tuple[Region, ...] = (
    Region("430104", "湖南省长沙市岳麓区"),
    Region("430121", "湖南省长沙市长沙县"),
    Region("430321", "湖南省湘潭市湘潭县"),
    Region("431102", "湖南省永州市零陵区"),
    Region("360426", "江西省九江市德安县"),
    Region("360121", "江西省南昌市南昌县"),
    Region("420111", "湖北省武汉市洪山区"),
    Region("421002", "湖北省荆州市沙市区"),
    Region("510107", "四川省成都市武侯区"),
    Region("510121", "四川省成都市金堂县"),
    Region("500103", "重庆市渝中区"),
    Region("411302", "河南省南阳市宛城区"),
    Region("410105", "河南省郑州市金水区"),
    Region("450105", "广西壮族自治区南宁市江南区"),
    Region("350203", "福建省厦门市思明区"),
    Region("350121", "福建省福州市闽侯县"),
    Region("340104", "安徽省合肥市蜀山区"),
    Region("340121", "安徽省合肥市长丰县"),
    Region("110105", "北京市朝阳区"),
    Region("120103", "天津市河西区"),
    Region("310104", "上海市徐汇区"),
    Region("330106", "浙江省杭州市西湖区"),
    Region("330122", "浙江省杭州市桐庐县"),
    Region("320106", "江苏省南京市鼓楼区"),
    Region("370102", "山东省济南市历下区"),
    Region("610113", "陕西省西安市雁塔区"),
)

# Plate prefixes seen on cars of people from elsewhere (weights roughly by migration).
OTHER_PLATE_PREFIXES: tuple[str, ...] = ("粤A", "粤S", "粤L", "粤E", "粤K", "粤V")

# First two digits of a region code → the province's plate abbreviation.
PROVINCE_PLATES: dict[str, str] = {
    "11": "京", "12": "津", "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽",
    "36": "赣", "37": "鲁", "41": "豫", "42": "鄂", "43": "湘", "44": "粤", "45": "桂",
    "50": "渝", "51": "川", "61": "陕",
}  # fmt: skip

# Nationality (Chinese name) → passport number pattern ("#" a digit, "A" a letter) and the
# Faker locale its holders' names come from.
PASSPORTS: dict[str, tuple[str, str]] = {
    "美国": ("5########", "en_US"),
    "英国": ("1########", "en_GB"),
    "加拿大": ("AA######", "en_CA"),
    "澳大利亚": ("PA#######", "en_AU"),
    "德国": ("C#AA##AA#", "de_DE"),
    "法国": ("##AA#####", "fr_FR"),
}


@functools.cache
def region_valid_for(code: str, year: int) -> bool:
    """Whether ``stdnum`` accepts ``code`` as the birth place of someone born in ``year``."""
    body = f"{code}{year:04d}0101001"
    return bool(ric.is_valid(body + ric.calc_check_digit(body + "0")))


def pick_region(rng: random.Random, pool: Sequence[Region], birth_year: int) -> Region:
    """A region of ``pool`` whose code was in use in ``birth_year`` (any region if none)."""
    fitting = [r for r in pool if region_valid_for(r.code, birth_year)]
    if not fitting:
        fitting = [
            r for r in (*OTHER_REGIONS, *LOCAL_REGIONS) if region_valid_for(r.code, birth_year)
        ]
    return rng.choice(fitting)


def birth_date_for_age(rng: random.Random, today: dt.date, age: int) -> dt.date:
    """A birth date at which a person is exactly ``age`` years old on ``today``."""
    latest = _years_before(today, age)
    earliest = _years_before(today, age + 1) + dt.timedelta(days=1)
    if age == 0:
        latest = today - dt.timedelta(days=30)  # babies at least a month old
        earliest = min(earliest, latest)
    return earliest + dt.timedelta(days=rng.randint(0, (latest - earliest).days))


def age_on(birth: dt.date, today: dt.date) -> int:
    """Completed years of age on ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _years_before(day: dt.date, years: int) -> dt.date:
    """The same day ``years`` earlier (28 February for 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year - years, day=28)


def resident_id(rng: random.Random, region: Region, birth: dt.date, male: bool) -> str:
    """An 18-character resident ID number (GB 11643): odd sequence for men, even for women."""
    serial = 2 * rng.randint(0, 499) + 1 if male else 2 * rng.randint(1, 499)
    body = f"{region.code}{birth:%Y%m%d}{serial:03d}"
    return body + ric.calc_check_digit(body + "0")


def passport(rng: random.Random, nationality: str) -> str:
    """A passport number shaped like those of ``nationality``."""
    pattern = PASSPORTS[nationality][0]
    return "".join(
        rng.choice(DIGITS) if c == "#" else rng.choice(PLATE_LETTERS) if c == "A" else c
        for c in pattern
    )


def ordinary_plate(rng: random.Random, prefix: str) -> str:
    """A 7-character plate (GA 36): prefix, then 5 digits with up to two letters among them."""
    letters = rng.choices((0, 1, 2), weights=(35, 45, 20))[0]
    where = set(rng.sample(range(5), letters))
    tail = "".join(
        rng.choice(PLATE_LETTERS) if i in where else rng.choice(DIGITS) for i in range(5)
    )
    return prefix + tail


def new_energy_plate(rng: random.Random, prefix: str) -> str:
    """An 8-character small new-energy plate: prefix, D/F, a letter or digit, 4 digits."""
    second = rng.choice(PLATE_LETTERS + DIGITS)
    return prefix + rng.choice(NEW_ENERGY_SMALL) + second + "".join(rng.choices(DIGITS, k=4))


def organisation_code(rng: random.Random, prefix: str = "MA5") -> str:
    """A 9-character organisation code (GB 11714) with its check character."""
    body = prefix + "".join(rng.choice(USCC_ALPHABET) for _ in range(8 - len(prefix)))
    total = sum(_gb11714_value(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def _gb11714_value(char: str) -> int:
    """The value of a character in the GB 11714 check sum."""
    return int(char) if char.isdigit() else ord(char) - ord("A") + 10


def credit_code(rng: random.Random, kind: str, region_code: str, org_prefix: str = "MA5") -> str:
    """A unified social credit code (GB 32100) with a valid check character.

    ``kind`` is the registering authority and category: ``91`` enterprise, ``92`` individual
    business (个体工商户), ``52`` private non-enterprise unit such as a private kindergarten.
    """
    first17 = kind + region_code + organisation_code(rng, org_prefix)
    return first17 + uscc.calc_check_digit(first17)
