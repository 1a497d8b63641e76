"""Render the service's OpenAPI schema as Markdown, so the API reference cannot drift from the code.

Usage::

    python scripts/generate_api_docs.py --out docs/API.md          # (re)write the reference
    python scripts/generate_api_docs.py --out docs/API.md --check  # exit 1 if it is out of date

Builds the app with ``service.api.create_app()`` and reads ``app.openapi()``: no server, no model
artifacts needed. Every endpoint gets its parameters, request body and responses (status, meaning,
body schema); every schema gets a field table (type, required, default, constraints, description).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = {
    "minimum": ">= {}",
    "exclusiveMinimum": "> {}",
    "maximum": "<= {}",
    "exclusiveMaximum": "< {}",
    "minLength": "min length {}",
    "maxLength": "max length {}",
    "minItems": "min items {}",
    "maxItems": "max items {}",
    "pattern": "pattern `{}`",
}
METHODS = ("get", "post", "put", "patch", "delete")


def openapi_schema() -> dict[str, Any]:
    """The OpenAPI document of a freshly built app (lifespan not run, so no model is loaded)."""
    sys.path.insert(0, str(REPO))
    from service.api import create_app

    return create_app().openapi()


def type_of(schema: dict[str, Any]) -> str:
    """A short Python-like type for a schema node (``list[int]``, ``str | null``, ``Model``)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(type_of(s) for s in schema[key])
    if "enum" in schema:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list[{type_of(schema.get('items', {}))}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[str, {type_of(schema['additionalProperties'])}]"
    return {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}.get(kind, kind)


def number_text(value: Any) -> str:
    """A bound as written: ``1`` for ``1.0``, and ``10**128 - 1``-style for an integer too long
    to read."""
    if isinstance(value, float) and value == int(value):
        value = int(value)
    if isinstance(value, int) and len(str(abs(value))) > 15:
        digits = len(str(abs(value + 1 if value > 0 else value - 1))) - 1
        if abs(value) == 10**digits - 1:
            return f"{'-' if value < 0 else ''}(10**{digits} - 1)"
    return str(value)


def constraints_of(schema: dict[str, Any]) -> str:
    """``>= 1, <= 100``-style text for the validation keywords of a node and its ``anyOf`` parts."""
    found = []
    for node in [schema, *schema.get("anyOf", [])]:
        for key, fmt in CONSTRAINTS.items():
            if key in node:
                value = node[key]
                found.append(fmt.format(number_text(value)))
    return ", ".join(found)


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def field_table(schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties") or {}
    if not properties:
        return [f"Type: {type_of(schema)}", ""]
    required = set(schema.get("required", []))
    lines = [
        "| field | type | required | default | constraints | description |",
        "|---|---|---|---|---|---|",
    ]
    for name, prop in properties.items():
        default = json.dumps(prop["default"], ensure_ascii=False) if "default" in prop else ""
        lines.append(
            f"| `{name}` | {cell(type_of(prop))} | {'yes' if name in required else 'no'} | "
            f"{cell(default)} | {cell(constraints_of(prop))} | "
            f"{cell(prop.get('description', ''))} |"
        )
    return lines + [""]


def body_type(content: dict[str, Any] | None) -> str:
    if not content:
        return "—"
    media, spec = next(iter(content.items()))
    schema = spec.get("schema", {})
    return f"{type_of(schema) if schema else 'any'} (`{media}`)"


def endpoint(path: str, method: str, op: dict[str, Any]) -> list[str]:
    lines = [f"### {method.upper()} {path}", ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}**", ""]
    if op.get("description"):
        lines += [op["description"].strip(), ""]
    params = op.get("parameters") or []
    if params:
        lines += [
            "Parameters:",
            "",
            "| name | in | type | required | description |",
            "|---|---|---|---|---|",
        ]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {cell(type_of(p.get('schema', {})))} | "
                f"{'yes' if p.get('required') else 'no'} | {cell(p.get('description', ''))} |"
            )
        lines.append("")
    if "requestBody" in op:
        lines += [f"Request body: {body_type(op['requestBody'].get('content'))}", ""]
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, resp in sorted(op.get("responses", {}).items()):
        lines.append(
            f"| {status} | {cell(resp.get('description', ''))} | "
            f"{cell(body_type(resp.get('content')))} |"
        )
    return lines + [""]


def render(spec: dict[str, Any]) -> str:
    """The whole Markdown reference; deterministic for a given schema."""
    info = spec.get("info", {})
    paths = spec.get("paths", {})
    ops = [(p, m, paths[p][m]) for p in paths for m in METHODS if m in paths[p]]
    lines = [
        f"# API reference — {info.get('title', 'service')} {info.get('version', '')}".rstrip(),
        "",
        "Generated from the OpenAPI schema of `service.api:app` by "
        "`python scripts/generate_api_docs.py --out docs/API.md`. Do not edit by hand: "
        "`tests/scripts/test_generate_api_docs.py` fails when this file differs from the code.",
        "",
    ]
    if info.get("description"):
        lines += [info["description"].strip(), ""]
    lines += ["## Endpoints", "", "| method | path | summary |", "|---|---|---|"]
    lines += [
        f"| {m.upper()} | [`{p}`](#{m}-{_anchor(p)}) | {cell(op.get('summary', ''))} |"
        for p, m, op in ops
    ]
    lines.append("")
    for path, method, op in ops:
        lines += endpoint(path, method, op)
    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["## Schemas", ""]
        for name in sorted(schemas):
            schema = schemas[name]
            lines += [f"### {name}", ""]
            if schema.get("description"):
                lines += [schema["description"].strip(), ""]
            lines += field_table(schema)
    return "\n".join(lines).rstrip() + "\n"


def _anchor(path: str) -> str:
    return path.strip("/").replace("/", "").replace("{", "").replace("}", "").lower()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "API.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is out of date")
    args = parser.parse_args(argv)
    text = render(openapi_schema())
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
        if current != text:
            state = "missing" if current is None else "out of date"
            print(
                f"{args.out} is {state}: run "
                f"`python scripts/generate_api_docs.py --out {args.out}`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
