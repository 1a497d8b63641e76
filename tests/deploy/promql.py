"""Metric names and label matchers named by a PromQL expression (rules, dashboard panels).

No maintained Python PromQL parser is packaged for this project, and promtool has no "list the
series" command, so this reads the small subset the deploy files use: selectors
``name{label="value", label=~"regex"}`` with the function names, aggregation operators, keywords,
grouping clauses (``by (...)``, ``on (...)``), range durations and Grafana ``$__variables``
taken out first. Good enough to catch a renamed or misspelt series, which is its only job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEYWORDS = frozenset(
    "and or unless by without on ignoring group_left group_right bool offset inf nan "
    "sum min max avg count stddev stdvar topk bottomk quantile count_values group".split()
)
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
RANGE = re.compile(r"\[[^\]]*\]")
GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")
SELECTOR = re.compile(r"(?<![\w.:])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?")
MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Selector:
    """One series selector: the metric name and its ``(label, operator, value)`` matchers."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]


def selectors(expr: str) -> list[Selector]:
    """Every series selector of ``expr`` (functions, keywords and numbers are skipped)."""
    text = GRAFANA_VARIABLE.sub("1m", expr)
    text = GROUPING.sub(" ", text)
    text = RANGE.sub(" ", text)
    found = []
    for match in SELECTOR.finditer(text):
        name, braces, call = match.groups()
        if call is not None and braces is None:  # rate(, histogram_quantile(, vector(
            continue
        if name in KEYWORDS:
            continue
        matchers = tuple(MATCHER.findall(braces or ""))
        found.append(Selector(name, matchers))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads."""
    return {selector.name for selector in selectors(expr)}
