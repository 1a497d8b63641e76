"""The demo generator's catalogue: Vietnamese cosmetics products with latent attributes.

Every product gets content (category, brand, skin types, key ingredients, price band, name and
description in Vietnamese) and two hidden numbers the interaction model uses: ``popularity``
(log-normal, so sales are long-tailed) and ``quality`` (drives its star ratings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender import vocabulary as V

# category: (share of catalogue, base price VND, sizes, unit, benefits, typical ingredients, usage)
CATEGORIES: dict[
    str, tuple[float, int, tuple[int, ...], str, tuple[str, ...], tuple[str, ...], str]
] = {
    "Sữa rửa mặt": (
        0.15,
        180_000,
        (50, 100, 150, 236, 473),
        "ml",
        ("Làm Sạch Sâu", "Dịu Nhẹ", "Kiềm Dầu", "Ngừa Mụn", "Dưỡng Ẩm", "Sáng Da"),
        ("BHA", "Niacinamide", "Ceramide", "Rau má", "Trà xanh", "Bí đao"),
        "Làm ướt mặt, tạo bọt và massage nhẹ nhàng 30 giây rồi rửa sạch, dùng sáng và tối.",
    ),
    "Kem chống nắng": (
        0.11,
        320_000,
        (30, 50, 60, 90),
        "ml",
        ("Nâng Tông", "Kiềm Dầu", "Dưỡng Ẩm", "Chống Nước", "Vật Lý Dịu Nhẹ"),
        ("Vitamin E", "Hyaluronic Acid", "Niacinamide", "Rau má"),
        "Thoa đều lên da 15 phút trước khi ra nắng, thoa lại sau mỗi 2–3 giờ.",
    ),
    "Serum": (
        0.14,
        420_000,
        (15, 20, 30, 50),
        "ml",
        ("Cấp Ẩm", "Sáng Da", "Mờ Thâm", "Giảm Mụn", "Phục Hồi", "Chống Lão Hóa"),
        ("Vitamin C", "Niacinamide", "Retinol", "Hyaluronic Acid", "Peptide", "BHA", "Rau má"),
        "Sau bước toner, lấy 2–3 giọt thoa đều và vỗ nhẹ cho thẩm thấu.",
    ),
    "Nước hoa hồng": (
        0.10,
        250_000,
        (100, 150, 200, 250, 400),
        "ml",
        ("Cân Bằng Da", "Se Khít Lỗ Chân Lông", "Cấp Ẩm", "Làm Dịu", "Sạch Sâu"),
        ("Hoa cúc", "AHA", "BHA", "Hyaluronic Acid", "Tràm trà", "Diếp cá"),
        "Thấm ra bông và lau nhẹ khắp mặt sau khi rửa mặt, hoặc vỗ trực tiếp bằng tay.",
    ),
    "Kem dưỡng": (
        0.15,
        380_000,
        (30, 50, 75, 100),
        "ml",
        ("Dưỡng Ẩm", "Phục Hồi", "Làm Dịu", "Ban Đêm", "Sáng Da", "Chống Lão Hóa"),
        ("Ceramide", "Panthenol", "Hyaluronic Acid", "Retinol", "Peptide", "Rau má"),
        "Lấy một lượng vừa đủ thoa đều lên mặt ở bước cuối của chu trình dưỡng da.",
    ),
    "Mặt nạ": (
        0.12,
        60_000,
        (20, 25, 100),
        "g",
        ("Cấp Ẩm", "Sáng Da", "Thải Độc", "Làm Dịu", "Se Lỗ Chân Lông"),
        ("Hyaluronic Acid", "Trà xanh", "Collagen", "Tràm trà", "Bí đao", "Nghệ"),
        "Đắp lên da sạch 15–20 phút rồi vỗ nhẹ phần tinh chất còn lại, dùng 2–3 lần mỗi tuần.",
    ),
    "Nước tẩy trang": (
        0.12,
        190_000,
        (100, 240, 400, 500),
        "ml",
        ("Làm Sạch Sâu", "Dịu Nhẹ", "Kiềm Dầu", "Cấp Ẩm", "Không Cồn"),
        ("Nước khoáng", "Glycerin", "Bí đao", "Rau má", "BHA"),
        "Thấm ra bông tẩy trang, áp nhẹ lên da vài giây rồi lau sạch, không cần rửa lại.",
    ),
    "Tẩy da chết": (
        0.06,
        230_000,
        (30, 75, 100, 118),
        "ml",
        ("Thông Thoáng Lỗ Chân Lông", "Làm Mịn Da", "Giảm Mụn Đầu Đen", "Sáng Da"),
        ("BHA", "AHA", "Nghệ", "Trà xanh"),
        "Dùng 2–3 lần mỗi tuần vào buổi tối, tránh vùng mắt và luôn dùng kem chống nắng ban ngày.",
    ),
    "Xịt khoáng": (
        0.05,
        210_000,
        (50, 150, 300),
        "ml",
        ("Cấp Nước", "Làm Dịu", "Khóa Lớp Trang Điểm"),
        ("Nước khoáng", "Hyaluronic Acid", "Hoa cúc"),
        "Xịt cách mặt 20 cm bất cứ khi nào da khô, để khô tự nhiên.",
    ),
}

# brand: (price tier 0 budget / 1 mid / 2 premium, brand appeal weight, origin)
BRANDS: dict[str, tuple[int, float, str]] = {
    "Cocoon": (0, 1.4, "Việt Nam"),
    "Simple": (0, 1.2, "Anh"),
    "Senka": (0, 1.2, "Nhật Bản"),
    "Hada Labo": (0, 1.1, "Nhật Bản"),
    "Garnier": (0, 1.0, "Pháp"),
    "Acnes": (0, 0.8, "Nhật Bản"),
    "Hatomugi": (0, 0.7, "Nhật Bản"),
    "Sunplay": (0, 0.7, "Nhật Bản"),
    "Bioré": (0, 0.8, "Nhật Bản"),
    "Pond's": (0, 0.6, "Thái Lan"),
    "CeraVe": (1, 1.5, "Mỹ"),
    "Cosrx": (1, 1.1, "Hàn Quốc"),
    "Klairs": (1, 0.9, "Hàn Quốc"),
    "Some By Mi": (1, 0.9, "Hàn Quốc"),
    "Innisfree": (1, 1.0, "Hàn Quốc"),
    "L'Oreal": (1, 1.2, "Pháp"),
    "Bioderma": (1, 1.3, "Pháp"),
    "Cetaphil": (1, 1.0, "Mỹ"),
    "Neutrogena": (1, 0.7, "Mỹ"),
    "Skin1004": (1, 0.8, "Hàn Quốc"),
    "Anessa": (1, 1.1, "Nhật Bản"),
    "Nivea": (1, 0.6, "Đức"),
    "La Roche-Posay": (2, 1.5, "Pháp"),
    "Vichy": (2, 1.0, "Pháp"),
    "Eucerin": (2, 0.9, "Đức"),
    "Avène": (2, 0.8, "Pháp"),
    "Paula's Choice": (2, 0.8, "Mỹ"),
    "Kiehl's": (2, 0.6, "Mỹ"),
    "Obagi": (2, 0.5, "Mỹ"),
    "Laneige": (2, 0.6, "Hàn Quốc"),
}
TIER_PRICE_FACTOR = (0.55, 1.0, 1.9)

# skin types a user can have (a product may also say "mọi loại da") and their share of users
USER_SKIN_TYPES: tuple[str, ...] = (
    "da dầu",
    "da hỗn hợp",
    "da mụn",
    "da khô",
    "da nhạy cảm",
    "da thường",
)
USER_SKIN_SHARE = np.array([0.27, 0.25, 0.17, 0.12, 0.13, 0.06])
ALL_SKIN = "mọi loại da"
SKIN_PHRASE = {
    "da dầu": "Cho Da Dầu",
    "da hỗn hợp": "Cho Da Hỗn Hợp",
    "da mụn": "Cho Da Mụn",
    "da khô": "Cho Da Khô",
    "da nhạy cảm": "Cho Da Nhạy Cảm",
    "da thường": "Cho Da Thường",
    ALL_SKIN: "Cho Mọi Loại Da",
}
LINES = (
    "Hydra",
    "Gentle",
    "Clear",
    "Bright",
    "Calm",
    "Aqua",
    "Derma",
    "Pure",
    "Daily",
    "Intensive",
    "Balance",
    "Glow",
    "Pore",
    "Repair",
    "Fresh",
    "Vita",
)


@dataclass(frozen=True)
class DemoCatalogue:
    """Demo products plus the latent arrays the interaction model reads (index = product row)."""

    products: (
        pd.DataFrame
    )  # canonical columns except num_ratings/num_sold/avg_rating (filled later)
    category: np.ndarray  # (P,) int, index into CATEGORIES
    brand: np.ndarray  # (P,) int, index into BRANDS
    tier: np.ndarray  # (P,) int 0..2 price band
    skin: np.ndarray  # (P, len(USER_SKIN_TYPES)) float: 1 targeted, 0.5 "mọi loại da", 0
    log_popularity: np.ndarray  # (P,) float
    quality: np.ndarray  # (P,) float in (0, 1)


def _description(
    name: str,
    cat: str,
    brand: str,
    origin: str,
    skins: list[str],
    ingredients: list[str],
    benefit: str,
    usage: str,
) -> str:
    skin_text = ", ".join(skins)
    return (
        f"{name} là {cat.lower()} của thương hiệu {brand} ({origin}), phù hợp với {skin_text}. "
        f"Thành phần nổi bật: {', '.join(ingredients)}, giúp {benefit.lower()} "
        "và nuôi dưỡng làn da khỏe mạnh. "
        f"Kết cấu mỏng nhẹ, thấm nhanh, không gây bết dính. Cách dùng: {usage}"
    )


def make_catalogue(n_products: int, rng: np.random.Generator) -> DemoCatalogue:
    """Draw ``n_products`` products; deterministic for the generator state."""
    cat_names = list(CATEGORIES)
    brand_names = list(BRANDS)
    shares = np.array([CATEGORIES[c][0] for c in cat_names])
    category = rng.choice(len(cat_names), size=n_products, p=shares / shares.sum())
    appeal = np.array([BRANDS[b][1] for b in brand_names])
    brand = rng.choice(len(brand_names), size=n_products, p=appeal / appeal.sum())
    tier = np.array([BRANDS[b][0] for b in brand_names])[brand]
    n_skin = len(USER_SKIN_TYPES)
    skin = np.zeros((n_products, n_skin))
    universal = rng.random(n_products) < 0.3
    targeted = rng.choice(n_skin, size=(n_products, 2), p=USER_SKIN_SHARE)
    second = rng.random(n_products) < 0.45
    rows = np.arange(n_products)
    skin[rows, targeted[:, 0]] = 1.0
    skin[rows[second], targeted[second, 1]] = 1.0
    skin[universal] = np.maximum(skin[universal], 0.5)
    log_popularity = rng.normal(0.0, 1.25, n_products) + 0.4 * np.log(appeal[brand])
    quality = rng.beta(8, 1.5, n_products)

    median_size = {c: float(np.median(CATEGORIES[c][2])) for c in cat_names}  # once per category
    records = []
    seen: set[str] = set()
    for i in range(n_products):
        cat = cat_names[category[i]]
        _, base, sizes, unit, benefits, ingredients, usage = CATEGORIES[cat]
        b = brand_names[brand[i]]
        benefit = benefits[rng.integers(len(benefits))]
        n_ings = min(len(ingredients), 1 + int(rng.integers(3)))
        ings = [ingredients[j] for j in rng.choice(len(ingredients), size=n_ings, replace=False)]
        skins = [USER_SKIN_TYPES[k] for k in np.flatnonzero(skin[i] == 1.0)]
        if universal[i]:
            skins = [ALL_SKIN, *skins]
        size = int(sizes[rng.integers(len(sizes))])
        line = LINES[rng.integers(len(LINES))]
        name = f"{cat.title()} {b} {line} {benefit} {ings[0]} {SKIN_PHRASE[skins[0]]} {size}{unit}"
        while name in seen:  # unique names: a second line word
            line = f"{line} {LINES[rng.integers(len(LINES))]}"
            name = (
                f"{cat.title()} {b} {line} {benefit} {ings[0]} {SKIN_PHRASE[skins[0]]} {size}{unit}"
            )
        seen.add(name)
        price = base * TIER_PRICE_FACTOR[tier[i]] * (size / median_size[cat]) ** 0.5
        price *= rng.lognormal(0.0, 0.15)
        records.append(
            {
                V.PRODUCT_ID: f"p{i + 1:05d}",
                V.NAME: name,
                V.BRAND: b,
                V.CATEGORY: cat,
                V.PRICE: float(round(price, -3)),
                V.SKIN_TYPES: skins,
                V.INGREDIENTS: ", ".join(ings),
                V.DESCRIPTION: _description(
                    name, cat, b, BRANDS[b][2], skins, ings, benefit, usage
                ),
            }
        )
    return DemoCatalogue(
        products=pd.DataFrame.from_records(records),
        category=category,
        brand=brand,
        tier=tier,
        skin=skin,
        log_popularity=log_popularity,
        quality=quality,
    )
