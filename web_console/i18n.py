"""The page's language, its catalogue, and how it writes money and times.

The language is the one the person chose (a cookie set by the switch on every
page), else the best match of ``Accept-Language``, else English. Strings come
from the gettext catalogue in ``locales/``; the ``.po`` files are the source
and are compiled when the hub starts, so no compiled file can fall behind them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale, dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
#: Language tags as pages and the switch name them, with Babel's name for each.
LANGUAGES = {"en": "en", "zh-Hans": "zh_Hans"}
DEFAULT = "en"
COOKIE = "cs_lang"


@dataclass(frozen=True)
class Language:
    tag: str
    locale: Locale
    translations: NullTranslations

    def money(self, cents: int, currency: str = "CNY") -> str:
        """¥ with two decimals, written as the language writes it."""
        return numbers.format_currency(
            Decimal(cents) / 100, currency, locale=self.locale, decimal_quantization=True
        )

    def when(self, moment: datetime, time_zone: str | None = None) -> str:
        """A time in the shop's time zone, named in the language; in UTC without one."""
        if time_zone is None:
            shown = dates.format_datetime(moment, "medium", tzinfo=dates.UTC, locale=self.locale)
            return f"{shown} UTC"
        zone = ZoneInfo(time_zone)
        shown = dates.format_datetime(moment, "medium", tzinfo=zone, locale=self.locale)
        return f"{shown} {dates.get_timezone_location(zone, locale=self.locale)}"

    def zone_name(self, time_zone: str) -> str:
        """A time zone as the language names it: China (Shanghai) Time, in English."""
        return str(dates.get_timezone_location(ZoneInfo(time_zone), locale=self.locale))

    def number(self, value: int) -> str:
        return numbers.format_decimal(value, locale=self.locale)


@cache
def language(tag: str) -> Language:
    name = LANGUAGES[tag]
    locale = Locale.parse(name)
    source = LOCALES_DIR / name / "LC_MESSAGES" / "messages.po"
    if not source.is_file():
        return Language(tag, locale, NullTranslations())
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=name)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Language(tag, locale, Translations(compiled))


def _accepted(header: str) -> list[str]:
    """The tags of an Accept-Language header, best first."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate(request: Request) -> Language:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return language(chosen)
    for tag in _accepted(request.headers.get("accept-language", "")):
        if tag.lower().startswith("zh"):
            # zh, zh-CN, zh-SG, zh-Hans: all read Simplified Chinese.
            return language("zh-Hans")
        if tag.lower().split("-")[0] == "en":
            return language(DEFAULT)
    return language(DEFAULT)
