"""The typed records the event store keeps: a shopper's event and a catalogue update.

Validation happens here, once, at the door: :func:`validate_events` turns a client's JSON (one
event or a list) into :class:`Event` records or raises :class:`InvalidEventError` naming the item
index, the field and how to fix it. A batch is all-or-nothing: one bad item rejects the batch.

Rules a storefront can rely on:

- ``user_id`` / ``product_id``: non-empty strings (numbers are accepted and turned into strings).
- ``type``: one of ``view | cart | purchase | rating | remove_from_cart``.
- ``rating``: an integer 1-5, required when ``type`` is ``rating`` and refused for other types
  (a rating on a view is a client bug, not something to drop silently).
- ``timestamp``: UTC seconds since the epoch, or an ISO-8601 string with a UTC offset; absent
  means "now". Later than now + the clock-skew tolerance is refused (milliseconds are the usual
  mistake), and so are naive datetimes, negative and non-finite values.
- ``event_id``: the client's idempotency key; absent means the store assigns a random one (so a
  transport-level retry inside the store is still stored once, and the ack can return it).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from recommender import vocabulary as V
from recommender.errors import InvalidEventError

EventType = Literal["view", "cart", "purchase", "rating", "remove_from_cart"]
MAX_ID_LENGTH = 128
MAX_TEXT_LENGTH = 500
MAX_SKIN_TYPES = 20


def _id_string(value: Any) -> Any:
    """Accept numeric ids (storefronts often send them) but not booleans."""
    if isinstance(value, bool):
        return value  # fails the str check below with a clear message
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        value = int(value)  # JSON Schema's integer: 10.0 is 10
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()
    return value


def _not_bool(value: Any) -> Any:
    """JSON ``true`` is not a time: without this, pydantic would read it as 1.0."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    return value


def _whole_number(value: Any) -> Any:
    """JSON has one number type: ``5.0`` is the integer 5 (JSON Schema says so too); ``5.5``,
    ``"5"`` and ``true`` stay refused by the strict integer check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Identifier = Annotated[
    str, BeforeValidator(_id_string), Field(min_length=1, max_length=MAX_ID_LENGTH)
]


@dataclass(frozen=True)
class Event:
    """One shopper action, validated. ``timestamp`` is UTC seconds; ``rating`` only for ratings."""

    event_id: str
    user_id: str
    product_id: str
    type: EventType
    timestamp: float
    rating: int | None = None
    recommendation_id: str | None = None


@dataclass(frozen=True)
class ProductUpdate:
    """A catalogue change for ``product_id``.

    ``replace=True`` is a PUT: ``fields`` is the whole record (every name in
    ``vocabulary.PRODUCT_UPDATE_FIELDS``). ``replace=False`` is a PATCH: only the given fields.
    """

    product_id: str
    fields: Mapping[str, Any]
    replace: bool


@dataclass(frozen=True)
class EventRecord:
    """An event as stored: its sequence number and when the store received it (UTC seconds)."""

    seq: int
    event: Event
    received_at: float


@dataclass(frozen=True)
class ProductRecord:
    """A product's stored state after an update, at sequence ``seq``.

    The store folds every update of a product into this record, so the latest record alone is
    the product's state: ``replace=True`` means ``fields`` is the whole record (some PUT is in
    the chain); ``replace=False`` means ``fields`` are changes on top of the model's catalogue.
    Applying a record is idempotent, which is what makes compaction safe.
    """

    seq: int
    product_id: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    replace: bool = False
    received_at: float = 0.0


StoredRecord = EventRecord | ProductRecord


class _EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: Identifier | None = None
    user_id: Identifier
    product_id: Identifier
    type: EventType
    rating: (
        Annotated[int, BeforeValidator(_whole_number), Field(strict=True, ge=1, le=5)] | None
    ) = None
    timestamp: Annotated[float | datetime | None, BeforeValidator(_not_bool)] = None
    recommendation_id: Identifier | None = None


class _ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_LENGTH)] | None = None
    brand: Annotated[str, Field(max_length=MAX_TEXT_LENGTH)] | None = None
    category: Annotated[str, Field(max_length=MAX_TEXT_LENGTH)] | None = None
    skin_types: Annotated[list[str], Field(max_length=MAX_SKIN_TYPES)] | None = None
    price: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    available: Annotated[bool, Field(strict=True)] | None = None


_HINTS = {
    "user_id": "send the shopper's id as a non-empty string",
    "product_id": "send a product id from the catalogue as a non-empty string",
    "event_id": "send a unique string per event (up to 128 characters), or leave it out",
    "recommendation_id": "send the id of the recommendation that was clicked, or leave it out",
    "type": "use one of " + ", ".join(V.EVENT_TYPES),
    "rating": "send an integer from 1 to 5, only with type 'rating'",
    "timestamp": "send UTC seconds since the epoch (not milliseconds) or ISO-8601 with offset",
    "name": "send a non-empty product name",
    "brand": "send the brand as a string",
    "category": "send the category as a string",
    "price": "send a non-negative number",
    "available": "send true or false",
    "skin_types": f"send a list of at most {MAX_SKIN_TYPES} strings",
}
REQUIRED_ON_REPLACE = (V.NAME, V.BRAND, V.CATEGORY, V.PRICE)
REPLACE_DEFAULTS: Mapping[str, Any] = {V.SKIN_TYPES: [], V.PRODUCT_AVAILABLE: True}


def _fail(where: str, index: int, name: str, problem: str) -> InvalidEventError:
    hint = _HINTS.get(name, "remove the field or fix its value")
    return InvalidEventError(f"{where}.{name}: {problem}; {hint}.", index=index, field=name)


def _from_validation(where: str, index: int, exc: ValidationError) -> InvalidEventError:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "item"
    problem = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
    return _fail(where, index, name, problem)


def _timestamp(value: float | datetime | None, now: float) -> float | str:
    """UTC seconds for ``value``, or a problem description."""
    if value is None:
        return now
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return "a datetime without a UTC offset is ambiguous"
        return value.timestamp()
    if not math.isfinite(value) or value < 0:
        return f"{value} is not a valid time"
    return float(value)


def _event(item: Any, index: int, now: float, clock_skew: float, known: Callable | None) -> Event:
    where = f"events[{index}]"
    if not isinstance(item, Mapping):
        raise InvalidEventError(
            f"{where}: expected a JSON object, got {type(item).__name__}; send "
            '{"user_id": ..., "product_id": ..., "type": ...}.',
            index=index,
            field="item",
        )
    try:
        parsed = _EventIn.model_validate(item)
    except ValidationError as exc:
        raise _from_validation(where, index, exc) from None
    if parsed.type == V.EVENT_RATING and parsed.rating is None:
        raise _fail(where, index, "rating", "required when type is 'rating'")
    if parsed.type != V.EVENT_RATING and parsed.rating is not None:
        raise _fail(where, index, "rating", f"not allowed with type {parsed.type!r}")
    ts = _timestamp(parsed.timestamp, now)
    if isinstance(ts, str):
        raise _fail(where, index, "timestamp", ts)
    if ts > now + clock_skew:
        raise _fail(
            where,
            index,
            "timestamp",
            f"{ts:.0f} is {ts - now:.0f} s in the future (tolerance {clock_skew:.0f} s)",
        )
    if known is not None and not known(parsed.product_id):
        raise _fail(where, index, "product_id", f"unknown product {parsed.product_id!r}")
    return Event(
        event_id=parsed.event_id or uuid.uuid4().hex,
        user_id=parsed.user_id,
        product_id=parsed.product_id,
        type=parsed.type,
        timestamp=ts,
        rating=parsed.rating,
        recommendation_id=parsed.recommendation_id,
    )


def validate_events(
    payload: Any,
    *,
    max_batch: int,
    clock_skew_seconds: float,
    now: float | None = None,
    known_product: Callable[[str], bool] | None = None,
) -> list[Event]:
    """Validate one event (a JSON object) or a list of them; all-or-nothing.

    ``known_product`` (optional) says whether a product id may receive events; an unknown one is
    refused with the item index. Raises :class:`InvalidEventError` on the first bad item.
    """
    items: Sequence[Any] = [payload] if isinstance(payload, Mapping) else payload
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise InvalidEventError(
            "events: expected one event object or a list of them.", index=0, field="item"
        )
    if not items:
        raise InvalidEventError(
            "events: the list is empty; send at least one.", index=0, field="item"
        )
    if len(items) > max_batch:
        raise InvalidEventError(
            f"events: {len(items)} items exceed the limit of {max_batch} per request; "
            "split the batch.",
            index=max_batch,
            field="item",
        )
    clock = time.time() if now is None else now
    return [
        _event(item, i, clock, clock_skew_seconds, known_product) for i, item in enumerate(items)
    ]


def validate_product_update(product_id: Any, body: Any, *, replace: bool) -> ProductUpdate:
    """Validate a PUT (``replace=True``: a full record) or PATCH (partial) body for one product.

    PUT needs ``name``, ``brand``, ``category`` and ``price``; ``skin_types`` defaults to ``[]``
    and ``available`` to ``true``. PATCH needs at least one field.
    """
    where = f"products[{product_id!r}]"
    try:
        pid = _id_string(product_id)
        if not isinstance(pid, str) or not pid or len(pid) > MAX_ID_LENGTH:
            raise ValueError
    except ValueError:
        raise _fail("products", 0, "product_id", f"{product_id!r} is not a valid id") from None
    if not isinstance(body, Mapping):
        raise InvalidEventError(
            f"{where}: expected a JSON object of product fields.", index=0, field="item"
        )
    try:
        parsed = _ProductIn.model_validate(body)
    except ValidationError as exc:
        raise _from_validation(where, 0, exc) from None
    given = parsed.model_dump(exclude_unset=True)
    for name, value in given.items():
        if value is None:
            raise _fail(where, 0, name, "null is not a value; leave the field out")
    if replace:
        for name in REQUIRED_ON_REPLACE:
            if name not in given:
                raise _fail(
                    where,
                    0,
                    name,
                    "required in a full record (PUT); use PATCH to change some fields only",
                )
        given = {**REPLACE_DEFAULTS, **given}
    elif not given:
        raise InvalidEventError(
            f"{where}: no fields to change; send at least one of "
            + ", ".join(V.PRODUCT_UPDATE_FIELDS)
            + ".",
            index=0,
            field="item",
        )
    return ProductUpdate(product_id=pid, fields=given, replace=replace)


def fold_product(
    previous: ProductRecord | None, update: ProductUpdate
) -> tuple[dict[str, Any], bool]:
    """The product's fields and replace flag after ``update`` on top of ``previous``."""
    if update.replace or previous is None:
        return dict(update.fields), update.replace
    return {**previous.fields, **update.fields}, previous.replace
