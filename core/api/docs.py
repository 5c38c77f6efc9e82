"""The API's documentation page: the OpenAPI document as one self-contained HTML page.

FastAPI's own docs pages load Swagger UI from a CDN; this page loads nothing from anywhere
(no scripts, and a Content-Security-Policy that forbids them).
"""

from __future__ import annotations

import html
import json
from typing import Any

DOCS_POLICY = "default-src 'none'; style-src 'unsafe-inline'"  # the page may load nothing

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 62rem; color: #222; }}
section {{ border-top: 1px solid #ddd; padding: .5rem 0; }}
code, pre {{ font-family: ui-monospace, monospace; }}
.method {{ display: inline-block; min-width: 4.5rem; font-weight: 700; color: #05a; }}
table {{ border-collapse: collapse; margin: .3rem 0 .8rem; }}
th, td {{ border: 1px solid #ddd; padding: .2rem .5rem; text-align: left; vertical-align: top; }}
</style></head>
<body>
{body}
</body></html>
"""
CONSTRAINTS = ("minimum", "maximum", "minLength", "maxLength", "minItems", "enum", "default")


def _esc(value: Any) -> str:
    return html.escape(str(value))


def schema_label(schema: dict[str, Any]) -> str:
    """A schema in a few words of HTML: a link for a named one, ``array of X``, ``A | B``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#schema-{_esc(name)}">{_esc(name)}</a>'
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " | ".join(schema_label(option) for option in schema[key])
    if "const" in schema:
        return f"<code>{_esc(json.dumps(schema['const']))}</code>"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {schema_label(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {schema_label(schema['additionalProperties'])}"
    return _esc(kind)


def _notes(schema: dict[str, Any]) -> str:
    rules = [f"{key}: {json.dumps(schema[key])}" for key in CONSTRAINTS if key in schema]
    return _esc("; ".join([schema.get("description", ""), *rules]).strip("; "))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _parameters(operation: dict[str, Any]) -> str:
    rows = [
        [
            f"<code>{_esc(p['name'])}</code>",
            _esc(p.get("in", "")),
            "yes" if p.get("required") else "no",
            schema_label(p.get("schema", {})),
            _notes({**p.get("schema", {}), "description": p.get("description", "")}),
        ]
        for p in operation.get("parameters", [])
    ]
    header = ["parameter", "in", "required", "type", "notes"]
    return "<h4>Parameters</h4>" + _table(header, rows) if rows else ""


def _request_body(operation: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    parts = [
        f"<p>Request body (<code>{_esc(media)}</code>): {schema_label(spec.get('schema', {}))}</p>"
        for media, spec in content.items()
    ]
    return "".join(parts)


def _responses(operation: dict[str, Any]) -> str:
    rows = []
    for status, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        schema = next(iter(content.values()), {}).get("schema")
        label = schema_label(schema) if schema else ""
        rows.append([_esc(status), _esc(response.get("description", "")), label])
    return "<h4>Responses</h4>" + _table(["status", "description", "schema"], rows)


def operation_html(path: str, method: str, operation: dict[str, Any]) -> str:
    """One endpoint: method, path, summary, description, parameters, body and responses."""
    secured = " <small>(needs the bearer token)</small>" if operation.get("security") else ""
    return (
        f'<section id="op-{_esc(operation.get("operationId", path))}">'
        f'<h3><span class="method">{_esc(method.upper())}</span> <code>{_esc(path)}</code>'
        f"{secured}</h3><p><b>{_esc(operation.get('summary', ''))}</b></p>"
        f"<p>{_esc(operation.get('description', ''))}</p>"
        f"{_parameters(operation)}{_request_body(operation)}{_responses(operation)}</section>"
    )


def schema_html(name: str, schema: dict[str, Any]) -> str:
    """One named schema: its description and a row per property (type, required, rules)."""
    required = set(schema.get("required", []))
    rows = [
        [f"<code>{_esc(prop)}</code>", schema_label(sub), "yes" if prop in required else "no"]
        + [_notes(sub)]
        for prop, sub in schema.get("properties", {}).items()
    ]
    table = _table(["field", "type", "required", "notes"], rows) if rows else ""
    description = f"<p>{_esc(schema.get('description', ''))}</p>"
    return f'<section id="schema-{_esc(name)}"><h3>{_esc(name)}</h3>{description}{table}</section>'


def docs_page(spec: dict[str, Any]) -> str:
    """The OpenAPI document as one self-contained HTML page (no scripts, nothing loaded)."""
    info = spec.get("info", {})
    parts = [
        f"<h1>{_esc(info.get('title', 'API'))} <small>{_esc(info.get('version', ''))}</small></h1>",
        f"<p>{_esc(info.get('description', ''))}</p>",
        "<p>The machine-readable schema: <code>GET /openapi.json</code>.</p>",
        "<h2>Endpoints</h2>",
    ]
    parts += [
        operation_html(path, method, operation)
        for path, operations in spec.get("paths", {}).items()
        for method, operation in operations.items()
    ]
    schemas = spec.get("components", {}).get("schemas", {})
    parts += ["<h2>Schemas</h2>"] + [schema_html(name, s) for name, s in schemas.items()]
    return PAGE.format(title=_esc(info.get("title", "API")), body="\n".join(parts))
