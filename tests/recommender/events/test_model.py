"""Validation at the door: every bad item is refused with its index, field and a fix."""

from __future__ import annotations

from typing import Any

import pytest

from recommender.errors import InvalidEventError, InvalidRequestError
from recommender.events import Event, ProductUpdate, validate_events, validate_product_update

NOW = 1_800_000_000.0
BASE = {"user_id": "u1", "product_id": "p1", "type": "view"}


def one(**extra: Any) -> Event:
    return validate_events({**BASE, **extra}, max_batch=5, clock_skew_seconds=300, now=NOW)[0]


def refused(payload: Any, **kw: Any) -> InvalidEventError:
    with pytest.raises(InvalidEventError) as caught:
        validate_events(payload, max_batch=kw.pop("max_batch", 5), clock_skew_seconds=300, now=NOW,
                        **kw)  # fmt: skip
    assert isinstance(caught.value, InvalidRequestError)  # the service's 422 mapping applies
    return caught.value


def test_a_minimal_event_defaults_to_now_and_gets_an_event_id() -> None:
    event = one()
    assert (event.user_id, event.product_id, event.type, event.timestamp) == (
        "u1",
        "p1",
        "view",
        NOW,
    )
    assert len(event.event_id) == 32 and event.rating is None and event.recommendation_id is None


def test_numeric_ids_iso_timestamps_and_ratings_are_accepted() -> None:
    event = one(user_id=42, type="rating", rating=5, timestamp="2024-01-01T07:00:00+07:00",
                event_id="e-1", recommendation_id="r-9")  # fmt: skip
    assert event == Event("e-1", "42", "p1", "rating", 1_704_067_200.0, 5, "r-9")
    assert one(timestamp=NOW + 299).timestamp == NOW + 299


@pytest.mark.parametrize(
    ("extra", "field", "says"),
    [
        ({"type": "click"}, "type", "use one of view, cart, purchase, rating, remove_from_cart"),
        ({"type": "rating"}, "rating", "required when type is 'rating'"),
        ({"type": "rating", "rating": 6}, "rating", "less than or equal to 5"),
        ({"type": "rating", "rating": 0}, "rating", "greater than or equal to 1"),
        ({"type": "rating", "rating": 4.5}, "rating", "valid integer"),
        ({"rating": 3}, "rating", "not allowed with type 'view'"),
        ({"timestamp": NOW + 301}, "timestamp", "301 s in the future (tolerance 300 s)"),
        ({"timestamp": NOW * 1000}, "timestamp", "not milliseconds"),
        ({"timestamp": "yesterday"}, "timestamp", "ISO-8601"),
        ({"timestamp": "2024-01-01T00:00:00"}, "timestamp", "without a UTC offset"),
        ({"timestamp": -5}, "timestamp", "-5.0 is not a valid time"),
        ({"timestamp": True}, "timestamp", "a boolean is not a time"),
        ({"user_id": ""}, "user_id", "must not be empty"),
        ({"user_id": True}, "user_id", "valid string"),
        ({"product_id": "x" * 129}, "product_id", "at most 128"),
        ({"sku": "1"}, "sku", "unknown field"),
    ],
)
def test_a_bad_field_names_its_item_and_how_to_fix_it(extra: dict, field: str, says: str) -> None:
    error = refused([BASE, BASE, {**BASE, **extra}])
    assert (error.index, error.field) == (2, field)
    assert str(error).startswith(f"events[2].{field}: ") and says in str(error)


def test_missing_fields_not_objects_empty_and_oversize_batches_are_refused() -> None:
    assert refused([BASE, {"user_id": "u"}]).field == "product_id"
    error = refused([BASE, "view"])
    assert (error.index, error.field) == (1, "item") and "expected a JSON object" in str(error)
    assert "empty" in str(refused([]))
    error = refused([BASE] * 6)
    assert "6 items exceed the limit of 5" in str(error) and "split the batch" in str(error)


def test_unknown_products_are_refused_when_a_catalogue_check_is_given() -> None:
    error = refused([BASE, {**BASE, "product_id": "ghost"}], known_product=lambda p: p == "p1")
    assert (error.index, error.field) == (1, "product_id") and "unknown product 'ghost'" in str(
        error
    )


def test_put_is_a_full_record_with_defaults_and_patch_a_partial_one() -> None:
    full = {"name": "Kem", "brand": "B", "category": "C", "price": 10}
    assert validate_product_update(7, full, replace=True) == ProductUpdate(
        "7", {**full, "price": 10.0, "skin_types": [], "available": True}, True
    )
    patch = validate_product_update("p1", {"available": False}, replace=False)
    assert patch == ProductUpdate("p1", {"available": False}, False)


@pytest.mark.parametrize(
    ("body", "replace", "field", "says"),
    [
        ({"name": "x"}, True, "brand", "required in a full record (PUT)"),
        ({}, False, "item", "no fields to change"),
        ({"price": -1}, False, "price", "greater than or equal to 0"),
        ({"available": "yes"}, False, "available", "valid boolean"),
        ({"name": None}, False, "name", "null is not a value"),
        ({"skin_types": ["a"] * 21}, False, "skin_types", "at most 20"),
        ({"sku": 1}, False, "sku", "unknown field"),
    ],
)
def test_a_bad_product_update_names_the_field(body: dict, replace: bool, field: str, says: str):
    with pytest.raises(InvalidEventError) as caught:
        validate_product_update("p1", body, replace=replace)
    assert caught.value.field == field and says in str(caught.value)
