"""Cosmetics vocabulary shared by the sources: categories, brands, skin types and ingredients.

Raw shops put brand and category only in the Vietnamese product name ("Sữa Rửa Mặt CeraVe …"), so
the adapters parse them with these lists; the demo generator draws its catalogue from the same
lists, so demo, Shopee and Hasaki products speak one vocabulary (filters and content features
line up).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

UNKNOWN_CATEGORY = "Khác"

# canonical category -> lower-case name patterns. The pattern found EARLIEST in a name wins
# (names start with the product type: "Kem Dưỡng … Giảm Mụn" is a cream, not an acne treatment).
CATEGORY_PATTERNS: dict[str, tuple[str, ...]] = {
    "Sữa rửa mặt": (
        "sữa rửa mặt",
        "gel rửa mặt",
        "kem rửa mặt",
        "bọt rửa mặt",
        "rửa mặt",
        "cleanser",
        "cleansing foam",
        "face wash",
        "facial wash",
    ),
    "Nước tẩy trang": (
        "nước tẩy trang",
        "dầu tẩy trang",
        "sáp tẩy trang",
        "gel tẩy trang",
        "sữa tẩy trang",
        "khăn tẩy trang",
        "bông tẩy trang",
        "tẩy trang",
        "micellar",
        "cleansing water",
        "cleansing oil",
    ),
    "Kem chống nắng": (
        "kem chống nắng",
        "sữa chống nắng",
        "gel chống nắng",
        "xịt chống nắng",
        "chống nắng",
        "sunscreen",
        "sunblock",
        "sun cream",
        "spf",
    ),
    "Serum": ("serum", "tinh chất", "essence", "ampoule", "dưỡng chất"),
    "Nước hoa hồng": ("nước hoa hồng", "nước cân bằng", "toner", "nước dưỡng", "dung dịch"),
    "Kem dưỡng": (
        "kem dưỡng",
        "gel dưỡng",
        "sữa dưỡng",
        "dầu dưỡng",
        "lotion dưỡng",
        "moisturi",
        "cream",
        "kem",
    ),
    "Mặt nạ": ("mặt nạ", "mask"),
    "Tẩy da chết": ("tẩy tế bào chết", "tẩy da chết", "exfoliat", "peeling", "scrub"),
    "Xịt khoáng": ("xịt khoáng", "mist"),
    "Trị mụn": ("miếng dán mụn", "chấm mụn", "gel giảm mụn", "trị mụn"),
}

# canonical brand -> extra spellings (the canonical name itself is always matched)
BRAND_ALIASES: dict[str, tuple[str, ...]] = {
    "CeraVe": (),
    "La Roche-Posay": ("la roche posay", "laroche posay"),
    "Bioderma": (),
    "Cocoon": (),
    "Klairs": ("dear, klairs", "dear klairs"),
    "L'Oreal": ("l'oréal", "loreal", "l’oreal"),
    "Anessa": (),
    "Cosrx": (),
    "Garnier": (),
    "Simple": (),
    "Senka": (),
    "Hada Labo": ("hadalabo",),
    "Innisfree": (),
    "Vichy": (),
    "Eucerin": (),
    "Skin1004": ("skin 1004",),
    "Cetaphil": (),
    "SVR": (),
    "Hatomugi": (),
    "Neutrogena": (),
    "Some By Mi": ("somebymi",),
    "Bioré": ("biore",),
    "Sunplay": (),
    "Nivea": (),
    "Pond's": ("ponds", "pond’s"),
    "Olay": (),
    "Obagi": (),
    "Paula's Choice": ("paula’s choice", "paulas choice"),
    "The Ordinary": (),
    "Avène": ("avene",),
    "Caudalie": (),
    "Nuxe": (),
    "Embryolisse": (),
    "Dr.G": ("dr. g", "drg"),
    "Timeless": (),
    "Bio-essence": ("bio essence",),
    "Megaduo": (),
    "Derma Angel": (),
    "Mihoo": (),
    "Byphasse": (),
    "Colorkey": (),
    "Care:Nel": ("carenel",),
    "Wonjin": (),
    "Banobagi": (),
    "Melano CC": (),
    "Naruko": (),
    "Kiehl's": ("kiehl’s", "kiehls"),
    "Ducray": (),
    "Hazeline": (),
    "St.Ives": ("st. ives",),
    "Acnes": (),
    "Skintific": (),
    "Torriden": (),
    "Round Lab": (),
    "Goodal": (),
    "Mediheal": (),
    "Laneige": (),
    "Sulwhasoo": (),
    "Ohui": (),
    "Vaseline": (),
    "Rohto": (),
    "Curél": ("curel",),
    "DHC": (),
    "Shiseido": (),
    "Mamonde": (),
    "Uriage": (),
    "A'pieu": ("apieu", "a’pieu"),
    "Tia'm": ("tiam", "tia’m"),
    "Purito": (),
    "Isntree": (),
    "Beplain": (),
    "Sebamed": (),
    "Physiogel": (),
    "Neogen": (),
    "Angel's Liquid": ("angel’s liquid",),
    "oh!oh!": (),
    "Balance": (),
    "Lemonade": (),
    "Cỏ Mềm": ("co mem",),
    "Thorakao": (),
    "Maybelline": (),
    "Emmié": ("emmie",),
    "Halio": (),
    "Vedette": (),
    "Skin Aqua": (),
    "Eaoron": (),
    "Klavuu": (),
    "Martiderm": (),
    "Image": (),
    "Gamma": (),
    "Sakura": (),
    "Joko Blend": (),
    "Caryophy": (),
    "Nature Republic": (),
    "Bielenda": (),
    "3W Clinic": (),
    "Pyunkang Yul": (),
    "Dermatory": (),
    "Za": (),
    "Senana": (),
    "Ziaja": (),
    "Decumar": (),
    "GoodnDoc": (),
    "Hotosu": (),
    "Silcot": (),
    "Ipek": (),
    "Rosette": (),
    "Cell Fusion C": (),
    "Evoluderm": (),
    "Tenamyd": (),
    "Naris Cosmetics": ("naris",),
    "Foodaholic": (),
    "Kosé": ("kose",),
    "JMsolution": (),
    "B.O.M": ("bom",),
    "Banila Co": (),
    "Isis Pharma": (),
    "Meishoku": (),
    "BNBG": (),
    "Milaganics": (),
    "Sur.Medic+": ("sur.medic",),
    "Pekah": (),
    "9Wishes": (),
    "So'Natural": (),
    "Fixderma": (),
    "A-Derma": (),
    "Chinoshio": (),
    "Derladie": (),
    "Pure Paw Paw": (),
    "Jomi": (),
    "Vacosi": (),
    "Mayan": (),
    "Alcom": (),
    "Ceiba": (),
    "EcoWipes": (),
}

_STOP_TOKENS = frozenset({"cho", "da", "và", "hộp", "combo", "bộ", "mini", "dạng", "làm", "giúp"})

SKIN_TYPES: tuple[str, ...] = (
    "da dầu",
    "da khô",
    "da hỗn hợp",
    "da nhạy cảm",
    "da mụn",
    "da thường",
    "mọi loại da",
)
SKIN_TYPE_PATTERNS: dict[str, tuple[str, ...]] = {
    "da dầu": ("da dầu", "da nhờn"),
    "da khô": ("da khô",),
    "da hỗn hợp": ("hỗn hợp",),
    "da nhạy cảm": ("nhạy cảm",),
    "da mụn": ("da mụn", "mụn trứng cá", "dầu mụn"),
    "da thường": ("da thường", "bình thường"),
    "mọi loại da": ("mọi loại da", "mọi làn da", "tất cả các loại da", "all skin"),
}

# canonical ingredient -> patterns (lower case)
INGREDIENT_PATTERNS: dict[str, tuple[str, ...]] = {
    "Niacinamide": ("niacinamide", "vitamin b3"),
    "BHA": ("bha", "salicylic"),
    "AHA": ("aha", "glycolic", "lactic acid"),
    "Hyaluronic Acid": ("hyaluronic",),
    "Vitamin C": ("vitamin c", "ascorbic"),
    "Retinol": ("retinol", "retinal", "retinoid"),
    "Ceramide": ("ceramide",),
    "Rau má": ("rau má", "centella", "cica"),
    "Panthenol": ("panthenol", "vitamin b5", "b5"),
    "Trà xanh": ("trà xanh", "green tea"),
    "Tràm trà": ("tràm trà", "tea tree"),
    "Vitamin E": ("vitamin e", "tocopherol"),
    "Peptide": ("peptide",),
    "Collagen": ("collagen",),
    "Kẽm": ("kẽm", "zinc"),
    "Arbutin": ("arbutin",),
    "Bí đao": ("bí đao",),
    "Nghệ": ("nghệ", "curcumin", "turmeric"),
    "Diếp cá": ("diếp cá",),
    "Hoa cúc": ("hoa cúc", "calendula", "chamomile"),
    "Nước khoáng": ("nước khoáng", "thermal water", "khoáng chất"),
    "Glycerin": ("glycerin",),
}


def _compile(words: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({w.lower() for w in words}, key=len, reverse=True)
    body = "|".join(re.escape(w.strip()) for w in alternatives)
    return re.compile(rf"(?<![\w'])(?:{body})(?![\w'])")


@lru_cache(maxsize=1)
def _brand_patterns() -> list[tuple[str, re.Pattern[str]]]:
    return [(b, _compile((b, *aliases))) for b, aliases in BRAND_ALIASES.items()]


@lru_cache(maxsize=1)
def _category_patterns() -> list[tuple[str, re.Pattern[str]]]:
    return [(c, _compile(p)) for c, p in CATEGORY_PATTERNS.items()]


def _earliest(text: str, patterns: list[tuple[str, re.Pattern[str]]]) -> str | None:
    best: tuple[int, int, str] | None = None
    for label, pattern in patterns:
        match = pattern.search(text)
        if match:
            key = (match.start(), -len(match.group(0)), label)
            if best is None or key < best:
                best = key
    return best[2] if best else None


def parse_category(name: str) -> str:
    """Canonical category of a name (earliest category phrase), else :data:`UNKNOWN_CATEGORY`."""
    return _earliest(str(name).lower(), _category_patterns()) or UNKNOWN_CATEGORY


def _brand_after_category(name: str) -> str:
    """Fallback: the Latin-script words after the category phrase ("Serum GoodnDoc Dưỡng …")."""
    low = name.lower()
    ends = [m.end() for _, p in _category_patterns() if (m := p.search(low))]
    if not ends:
        return ""
    words: list[str] = []
    for token in name[min(ends) :].split():
        if (
            not token.isascii()
            or token.lower() in _STOP_TOKENS
            or token[0].islower()
            or any(ch.isdigit() for ch in token)
            or len(words) == 2
        ):
            break
        words.append(token)
    return " ".join(words)


def parse_brand(name: str) -> str:
    """Brand in ``name``: earliest known brand, else the word(s) after the category, else ``""``."""
    text = str(name)
    return _earliest(text.lower(), _brand_patterns()) or _brand_after_category(text)


def canonical_brand(raw: str) -> str:
    """A raw brand field ("simple", "COSRX", "no_brand") in canonical spelling ("" when missing)."""
    text = str(raw or "").strip()
    if not text or text.lower() in {"no_brand", "nan", "none", "no brand", "oem"}:
        return ""
    return parse_brand(text) or text


def parse_skin_types(text: str) -> list[str]:
    """Canonical skin types mentioned in ``text``, in :data:`SKIN_TYPES` order."""
    low = str(text or "").lower()
    return [s for s in SKIN_TYPES if any(p in low for p in SKIN_TYPE_PATTERNS[s])]


def parse_ingredients(text: str) -> list[str]:
    """Canonical key ingredients mentioned in ``text`` (vocabulary order)."""
    low = f" {str(text or '').lower()} "
    found = []
    for label, patterns in INGREDIENT_PATTERNS.items():
        if any(re.search(rf"(?<!\w){re.escape(p.strip())}(?!\w)", low) for p in patterns):
            found.append(label)
    return found
