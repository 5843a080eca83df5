"""A POS export's bytes as text: the encodings Chinese shops' exports come in.

- UTF-8, with or without the byte-order mark spreadsheets write;
- GBK, as Chinese POS software still writes it (read as GB18030, its
  superset, so that the rarer characters GBK lacks are read too);
- UTF-16, as a spreadsheet's "Unicode text" export writes it.

A connector may name the encoding (``?encoding=``); otherwise it is told
apart here by rules that cannot mistake one for another: a byte-order mark;
the zero bytes UTF-16 puts beside ASCII; strict UTF-8; then strict GB18030,
kept only if what it reads is Chinese text. Statistical detectors
(charset-normalizer, chardet) were not used: on a short export they guess,
and a wrong guess would store mojibake. Here a file no rule fits is refused,
naming the line of the first byte that did not fit.
"""

from __future__ import annotations

import codecs
from enum import StrEnum

from cornerstore.errors import FieldError, ValidationFailed


class Encoding(StrEnum):
    utf_8 = "utf-8"
    gbk = "gbk"
    gb18030 = "gb18030"
    utf_16 = "utf-16"


#: The codec each declarable encoding is read with.
_CODEC = {
    Encoding.utf_8: "utf-8-sig",
    Encoding.gbk: "gb18030",
    Encoding.gb18030: "gb18030",
    Encoding.utf_16: "utf-16",
}
#: How many leading bytes tell UTF-16 without a byte-order mark by its zero bytes.
_SAMPLE = 400

#: What Chinese POS text holds besides ASCII: CJK ideographs, their punctuation,
#: full-width forms, and the symbols a till prints (¥, ·, ×, ℃, ①, ■, “”).  # noqa: RUF003
_CHINESE_TEXT = (
    (0x00A5, 0x00A5),
    (0x00B7, 0x00B7),
    (0x00D7, 0x00D7),
    (0x2010, 0x206F),
    (0x2100, 0x214F),
    (0x2460, 0x24FF),
    (0x25A0, 0x25FF),
    (0x3000, 0x303F),
    (0x3200, 0x32FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
    (0x20000, 0x2FFFF),
)


def refuse(reason: str) -> ValidationFailed:
    """The whole upload refused (422), naming where: ``line N: …``."""
    return ValidationFailed(
        f"the CSV cannot be read: {reason}", [FieldError(field="body", reason=reason)]
    )


def _line_of(data: bytes, codec: str, position: int) -> int:
    """The file line (from 1) of the byte at ``position``."""
    return data[:position].decode(codec, errors="replace").count("\n") + 1


def _strict(data: bytes, codec: str, name: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = _line_of(data, codec, exc.start)
        raise refuse(f"line {line}: not {name} (byte {exc.start})") from None


def _utf16_without_mark(data: bytes) -> str | None:
    """``utf-16-le`` or ``utf-16-be`` when the zero bytes beside ASCII say so, else None."""
    sample = data[: _SAMPLE - _SAMPLE % 2]
    if len(sample) < 2 or len(data) % 2:
        return None
    odd, even = sample[1::2].count(0), sample[0::2].count(0)
    half = len(sample) // 2
    if odd >= half * 0.4 and even == 0:
        return "utf-16-le"
    if even >= half * 0.4 and odd == 0:
        return "utf-16-be"
    return None


def _not_chinese(text: str) -> int | None:
    """The position of the first character beyond ASCII that Chinese POS text does not hold."""
    for position, char in enumerate(text):
        point = ord(char)
        if point > 0x7F and not any(low <= point <= high for low, high in _CHINESE_TEXT):
            return position
    return None


def decode(data: bytes, declared: Encoding | None = None) -> str:
    """The export as text; ``ValidationFailed`` naming the line where it cannot be."""
    if declared is not None:
        return _strict(data, _CODEC[declared], declared.value.upper())
    if data.startswith(codecs.BOM_UTF8):
        return _strict(data, "utf-8-sig", "UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _strict(data, "utf-16", "UTF-16")
    wide = _utf16_without_mark(data)
    if wide is not None:
        return _strict(data, wide, "UTF-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    odd = None if text is None else _not_chinese(text)
    if text is None or odd is not None:
        line = _line_of(data, "utf-8", first_bad)
        raise refuse(
            f"line {line}: neither UTF-8 nor Chinese text in GBK or UTF-16; "
            "name the encoding with ?encoding=",
        )
    return text
