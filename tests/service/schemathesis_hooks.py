"""Schemathesis hooks for ``make fuzz`` (loaded through ``SCHEMATHESIS_HOOKS``).

JSON Schema cannot compare two fields, so the cross-field rules of the API —
``filters.price_min`` at most ``filters.price_max`` (documented on both fields; a clear 422
otherwise) — and ``/batch_recommend``'s ``len(user_ids) × topk`` at most
``requests.max_batch_items`` are taught here, with the state-dependent 422s (an event naming a
product not in the catalogue, ``method=cf`` for a product created since the build, a
``context_items`` id the shop does not know):
a schema-valid request that breaks only such a rule is expected to be a 422, not a failure.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis.internal import lambda_sources

_describe_lambda = lambda_sources.lambda_description


def _lambda_description(f: Any) -> str:
    """Hypothesis describes filter lambdas by parsing their source file; CPython 3.11.7's
    ``ast.parse`` can raise ``SystemError: AST constructor recursion depth mismatch`` there
    (a CPython bug, fixed in later 3.11 releases), which schemathesis reports as a runtime error
    of its coverage phase. The description only names the strategy: fall back to a plain one."""
    try:
        return _describe_lambda(f)
    except SystemError:
        return "lambda: <source not parsed>"


lambda_sources.lambda_description = _lambda_description


def _inverted_price_range(body: Any) -> bool:
    filters = body.get("filters") if isinstance(body, dict) else None
    if not isinstance(filters, dict):
        return False
    low, high = filters.get("price_min"), filters.get("price_max")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    return numbers and low > high


# POST /events rules no JSON Schema can state: the product must be in the catalogue (state),
# ``rating`` goes with type "rating" only, and a timestamp may not be in the future (the clock)
_EVENT_RULES = (
    "unknown product",
    "required when type is 'rating'",
    "not allowed with type",
    "s in the future",
)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure except a 422 for an inverted price range or an event rule above."""
    if response.status_code == 422 and _inverted_price_range(case.body):
        return "is greater than price_max" not in response.text
    if response.status_code == 422 and case.path == "/events":
        return not any(rule in response.text for rule in _EVENT_RULES)
    if response.status_code == 422 and case.path == "/similar_items":
        # a product created by PUT since the build has no CF factors (state, not schema)
        return "has no CF factors yet" not in response.text
    if response.status_code == 422 and case.path == "/recommend":
        # context_items naming a product the shop does not know (state, not schema)
        return "context_items: product" not in response.text
    if response.status_code == 422 and case.path == "/batch_recommend":
        # user_ids × topk over requests.max_batch_items: a product of two fields
        return "(requests.max_batch_items)" not in response.text
    return True
