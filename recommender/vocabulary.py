"""The project's vocabulary, named once: column names, segments, signals, splits and file names.

Every module imports these names instead of repeating string literals, so a rename happens here.
"""

from __future__ import annotations

from typing import Final

# --- canonical product columns --------------------------------------------------------------
PRODUCT_ID: Final = "product_id"
NAME: Final = "name"
BRAND: Final = "brand"
CATEGORY: Final = "category"
PRICE: Final = "price"
AVG_RATING: Final = "avg_rating"
NUM_RATINGS: Final = "num_ratings"
NUM_SOLD: Final = "num_sold"
SKIN_TYPES: Final = "skin_types"  # list[str]
INGREDIENTS: Final = "ingredients"
DESCRIPTION: Final = "description"
TEXT: Final = "text"  # the string that is embedded

PRODUCT_COLUMNS: Final = (
    PRODUCT_ID,
    NAME,
    BRAND,
    CATEGORY,
    PRICE,
    AVG_RATING,
    NUM_RATINGS,
    NUM_SOLD,
    SKIN_TYPES,
    INGREDIENTS,
    DESCRIPTION,
    TEXT,
)

# --- canonical interaction columns ----------------------------------------------------------
USER_ID: Final = "user_id"
RATING: Final = "rating"
TIMESTAMP: Final = "timestamp"
WEIGHT: Final = "weight"  # confidence weight used by ALS
SOURCE: Final = "source"
IS_POSITIVE: Final = "is_positive"
SPLIT: Final = "split"

INTERACTION_COLUMNS: Final = (USER_ID, PRODUCT_ID, RATING, TIMESTAMP, WEIGHT, SOURCE)
PROCESSED_INTERACTION_COLUMNS: Final = INTERACTION_COLUMNS + (IS_POSITIVE, SPLIT)

# --- temporal split labels (column SPLIT of interactions.parquet) ---------------------------
SPLIT_TRAIN: Final = "train"
SPLIT_VAL: Final = "val"
SPLIT_TEST: Final = "test"
SPLITS: Final = (SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST)

# --- user segments (routing and evaluation) -------------------------------------------------
SEGMENT_TRAINABLE: Final = "trainable"  # has a CF row: >= 2 interactions with >= 1 positive
SEGMENT_COLD: Final = "cold"  # known, >= 1 positive interaction, no CF row
SEGMENT_UNKNOWN: Final = "unknown"  # never seen, or seen with no positive interaction
SEGMENTS: Final = (SEGMENT_TRAINABLE, SEGMENT_COLD, SEGMENT_UNKNOWN)

# --- hybrid signals ---------------------------------------------------------------------------
SIGNAL_CF: Final = "cf"  # user factors (trainable) or fold-in (cold) dotted with item factors
SIGNAL_CONTENT: Final = "content"  # cosine to the user's content profile
SIGNAL_ITEM_SIMILARITY: Final = "item_similarity"  # item-kNN over co-occurrence
SIGNAL_POPULARITY: Final = "popularity"
SIGNAL_QUALITY: Final = "quality"  # Bayesian-smoothed rating
SIGNALS: Final = (
    SIGNAL_CF,
    SIGNAL_CONTENT,
    SIGNAL_ITEM_SIMILARITY,
    SIGNAL_POPULARITY,
    SIGNAL_QUALITY,
)

# --- strategies reported by the engine ----------------------------------------------------------
STRATEGY_CF: Final = "cf"
STRATEGY_CONTENT: Final = "content"
STRATEGY_POPULARITY: Final = "popularity"

# --- model types ----------------------------------------------------------------------------------
MODEL_ALS: Final = "als"
MODEL_BPR: Final = "bpr"
MODEL_EASE: Final = "ease"  # closed-form item-item model: no factors, an (n, n) B (EASE_FILE)
MODEL_TYPES: Final = (MODEL_ALS, MODEL_BPR, MODEL_EASE)

# --- processed data files (data/processed/) --------------------------------------------------
USER_ITEM_MAPPINGS_FILE: Final = "user_item_mappings.json"
TRAINABLE_USER_MAPPING_FILE: Final = "trainable_user_mapping.json"
TOP_K_POPULAR_FILE: Final = "top_k_popular_items.json"
INTERACTIONS_FILE: Final = "interactions.parquet"
PRODUCTS_FILE: Final = "enriched_products.parquet"
DATA_STATS_FILE: Final = "data_stats.json"
EMBEDDINGS_DIR: Final = "content_based_embeddings"
EMBEDDINGS_FILE: Final = "product_embeddings.pt"
TEXT_ENCODER_DIR: Final = "text_encoder"  # fitted tfidf encoder, saved beside the embeddings

PROCESSED_FILES: Final = (
    USER_ITEM_MAPPINGS_FILE,
    TRAINABLE_USER_MAPPING_FILE,
    TOP_K_POPULAR_FILE,
    INTERACTIONS_FILE,
    PRODUCTS_FILE,
    DATA_STATS_FILE,
)

# --- default directories, relative to the working directory (the repository root) -------------
DEFAULT_DEMO_DIR: Final = "data/raw/demo"  # where `demo-data` writes the demo shop
DEFAULT_PROCESSED_DIR: Final = "data/processed"  # `prepare` output, read by train and serving
DEFAULT_REGISTRY_DIR: Final = "artifacts/cf"  # the model registry

# --- model registry (artifacts/cf/) ------------------------------------------------------------
REGISTRY_FILE: Final = "registry.json"
USER_FACTORS_FILE: Final = "U.npy"
ITEM_FACTORS_FILE: Final = "V.npy"
PARAMS_FILE: Final = "params.json"
METADATA_FILE: Final = "metadata.json"
MODEL_FILES: Final = (USER_FACTORS_FILE, ITEM_FACTORS_FILE, PARAMS_FILE, METADATA_FILE)
EASE_FILE: Final = "B.npy"  # EASE's (n, n) float32 item-item weights (only in EASE model dirs)

STATUS_CANDIDATE: Final = "candidate"
STATUS_CURRENT: Final = "current"
STATUS_ARCHIVED: Final = "archived"
STATUS_REJECTED: Final = "rejected"

# --- evaluation stages (tune on validation, report on test) ------------------------------------
STAGE_VALIDATION: Final = "validation"  # fit on train, history = train, target = val
STAGE_TEST: Final = "test"  # fit on train + val, history = train + val, target = test
STAGES: Final = (STAGE_VALIDATION, STAGE_TEST)

# --- evaluation rows (baselines and models in one table) ------------------------------------------
ROW_RANDOM: Final = "random"
ROW_POPULARITY: Final = "popularity"
ROW_ITEM_KNN: Final = "item_knn"
ROW_CONTENT: Final = "content"
ROW_HYBRID: Final = "hybrid"
EVALUATION_FILE: Final = "evaluation.json"
STUDY_FILE: Final = "study.json"  # every tuning trial of a model (training/search.py)
REGISTRY_LOCK_FILE: Final = ".registry.lock"

# --- /similar_items methods (serving) ----------------------------------------------------------
SIMILARITY_AUTO: Final = "auto"  # cf when the product has interactions, else content
SIMILARITY_CF: Final = "cf"  # cosine over the model's item factors
SIMILARITY_CONTENT: Final = "content"  # cosine over the product embeddings
SIMILARITY_METHODS: Final = (SIMILARITY_AUTO, SIMILARITY_CF, SIMILARITY_CONTENT)

# --- served scores ---------------------------------------------------------------------------
# every score serving returns is rounded to this many decimals: batched (gemm) and single-row
# (gemv) BLAS calls differ in the last bits, and rounding keeps near-ties in the same order
SCORE_DECIMALS: Final = 6

# --- fallback methods reported with non-CF recommendations (serving) ---------------------------
FALLBACK_COLD_HYBRID: Final = "cold_hybrid"  # fold-in + item similarity + content + popularity
FALLBACK_POPULARITY: Final = "popularity"  # unknown user: popularity / quality
# key in a model's metrics: test NDCG@10 of the trainable hybrid
GATE_METRIC: Final = "gate_ndcg@10"

# --- live events (recommender/events) ---------------------------------------------------------
EVENT_VIEW: Final = "view"
EVENT_CART: Final = "cart"
EVENT_PURCHASE: Final = "purchase"
EVENT_RATING: Final = "rating"  # carries a 1-5 rating
EVENT_REMOVE_FROM_CART: Final = "remove_from_cart"
EVENT_TYPES: Final = (EVENT_VIEW, EVENT_CART, EVENT_PURCHASE, EVENT_RATING, EVENT_REMOVE_FROM_CART)
PRODUCT_AVAILABLE: Final = "available"  # live catalogue field: false hides a product everywhere
PRODUCT_UPDATE_FIELDS: Final = (NAME, BRAND, CATEGORY, SKIN_TYPES, PRICE, PRODUCT_AVAILABLE)
DEFAULT_EVENTS_SQLITE_PATH: Final = "data/events.sqlite3"

# --- which interactions a registered model's factors were fit on (metadata deployed_fit) ---
FIT_TRAIN_VAL: Final = "train+val"  # the fit the test split evaluated
FIT_ALL: Final = "all"  # train + val + test: what is deployed by default
