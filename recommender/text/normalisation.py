"""Vietnamese shop-text normalisation: NFC, clean-up, tone placement, shop abbreviations.

Shop text mixes composed and decomposed diacritics, two tone-mark placements ("hoà"/"hòa"),
HTML fragments, emoji and chat abbreviations ("srm", "kcn", "ko"). :func:`normalise_text` maps all
of these to one form so that the same product text always gives the same tokens (and vectors).
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any, Final

# Whole-word shop abbreviations -> expansion. Matched case-insensitively, except the one-letter
# ones (see _SHORT): they must be lower-case and not follow a number or "vitamin", so "Vitamin K",
# "vitamin k" and "100 k" (a price) are left alone. "dd" is not here: DD cream is a product type.
ABBREVIATIONS: Final[dict[str, str]] = {
    "srm": "sữa rửa mặt",
    "kcn": "kem chống nắng",
    "tdc": "tẩy da chết",
    "ttr": "tẩy trang",
    "nhh": "nước hoa hồng",
    "nttr": "nước tẩy trang",
    "kd": "kem dưỡng",
    "kdd": "kem dưỡng da",
    "dn": "da nhờn",
    "dk": "da khô",
    "dh": "da hỗn hợp",
    "dhh": "da hỗn hợp",
    "dnc": "da nhạy cảm",
    "dm": "da mụn",
    "ko": "không",
    "k": "không",
    "khg": "không",
    "hok": "không",
    "dc": "được",
    "đc": "được",
    "sp": "sản phẩm",
    "vs": "với",
    "nc": "nước",
}
_SHORT: Final = frozenset({"k"})

_TAG = re.compile(r"<[^>]{0,200}>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_REPEAT_PUNCT = re.compile(r"([!?.,;:\-_*~=#])\1+")
_ABBREV = re.compile(
    r"(?<![\w-])("
    + "|".join(sorted((re.escape(a) for a in ABBREVIATIONS), key=len, reverse=True))
    + r")(?![\w-])",
    re.IGNORECASE,
)
# Unicode categories dropped as noise: symbols other than math/currency (emoji, dingbats, arrows),
# private use, surrogates, format characters (zero-width joiners, BOM) and unassigned code points.
_DROP_CATEGORIES: Final = frozenset({"So", "Sk", "Co", "Cs", "Cf", "Cn"})
_KEEP_SYMBOLS: Final = frozenset("%+&/°")


def _tone_placement_table() -> dict[str, str]:
    """Map the "new" tone placement of open oa/oe/uy syllables to the "old" one (hoà -> hòa).

    Only syllable-final pairs are moved (see :data:`_TONE_PAIR`), so "hoàn", "quý" stay as they are.
    """
    tones = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
    table: dict[str, str] = {}
    for first, second in (("o", "a"), ("o", "e"), ("u", "y")):
        for tone in tones:
            for f, s in ((first, second), (first.upper(), second), (first.upper(), second.upper())):
                new_style = f + unicodedata.normalize("NFC", s + tone)
                old_style = unicodedata.normalize("NFC", f + tone) + s
                table[new_style] = old_style
    return table


_TONE_TABLE: Final = _tone_placement_table()
_TONE_PAIR = re.compile(r"(?<![qQ])(" + "|".join(re.escape(k) for k in _TONE_TABLE) + r")(?!\w)")


# Characters that are never noise; only the rest is looked up by Unicode category (fast path).
_PLAIN = re.compile(r"[^\w\s.,;:!?'\"()\[\]{}<>/\\%+&°*#@$€£¥₫=~^|-]")


def _noise_to_space(match: re.Match[str]) -> str:
    ch = match.group(0)
    cat = unicodedata.category(ch)
    if (cat in _DROP_CATEGORIES or cat[0] == "C") and ch not in _KEEP_SYMBOLS:
        return " "
    return ch


def _drop_noise_chars(text: str) -> str:
    return _PLAIN.sub(_noise_to_space, text)


def _expand(match: re.Match[str]) -> str:
    word = match.group(0)
    lower = word.lower()
    if lower in _SHORT:
        before = match.string[: match.start()].rstrip().lower()
        if word != lower or before[-1:].isdigit() or before.endswith("vitamin"):
            return word
    return ABBREVIATIONS[lower]


def expand_abbreviations(text: str) -> str:
    """Replace whole-word shop abbreviations ("srm" -> "sữa rửa mặt"); "srmx" is left alone."""
    return _ABBREV.sub(_expand, text)


def is_missing(value: Any) -> bool:
    """True for None, NaN/NA, and blank strings: a field that contributes no text."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(value != value)  # NaN, pd.NA raises below
    except (TypeError, ValueError):
        return False


def clean_text(value: Any) -> str:
    """NFC, HTML/URL/emoji/control clean-up, tone placement, single spaces; case is kept.

    Missing values (None, NaN, blank) give "". Non-strings are converted with ``str``.
    """
    if is_missing(value):
        return ""
    text = unicodedata.normalize("NFC", str(value))
    text = html.unescape(text)
    text = _TAG.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _drop_noise_chars(text)
    text = unicodedata.normalize("NFC", text)
    text = _TONE_PAIR.sub(lambda m: _TONE_TABLE[m.group(0)], text)
    text = _REPEAT_PUNCT.sub(r"\1", text)
    return _SPACE.sub(" ", text).strip()


def normalise_text(value: Any, lowercase: bool = True) -> str:
    """The full normalisation: :func:`clean_text`, abbreviation expansion, optional lower-casing.

    Lower-casing is on for matching/TF-IDF; encoders that use case (PhoBERT's vocabulary is cased,
    pyvi's segmenter uses capitalisation) get ``lowercase=False``.
    """
    text = expand_abbreviations(clean_text(value))
    return text.lower() if lowercase else text
