"""Calls an rrssh service through the HTTP gateway using nothing but its OpenAPI document.

usage: openapi_client.py BASE_URL DOC_PATH TOKEN

Fetches the document, validates it (openapi-spec-validator), then calls every operation:
path and query parameters and JSON bodies are made from their schemas, the answer is checked
against the response schema (JSON) or item schema (NDJSON). Prints one line per call and exits
non-zero on the first failure.
"""

import json
import sys
import urllib.request

import jsonschema
from openapi_spec_validator import validate


def resolve(schema, doc):
    ref = schema.get("$ref") if isinstance(schema, dict) else None
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return resolve(doc["components"]["schemas"][name], doc)
    return schema


def sample(schema, doc):
    """A value that fits the schema (the simplest one)."""
    schema = resolve(schema, doc)
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "null")
    if t == "integer":
        return max(schema.get("minimum", 1), 1)
    if t == "number":
        return 1.5
    if t == "string":
        return "py"
    if t == "boolean":
        return True
    if t == "array":
        return [sample(schema.get("items", {}), doc)]
    if t == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: sample(v, doc) for k, v in props.items() if k in schema.get("required", [])}
    return None


def check(value, schema, doc):
    """Validates `value` against a schema that may refer to the document's components."""
    wrapped = {"$defs": doc["components"]["schemas"], **schema}
    text = json.dumps(wrapped).replace("#/components/schemas/", "#/$defs/")
    jsonschema.validate(value, json.loads(text))


def call(base, token, method, path, body=None, accept=None):
    req = urllib.request.Request(base + path, method=method.upper())
    req.add_header("Authorization", "Bearer " + token)
    if accept:
        req.add_header("Accept", accept)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data=data, timeout=10) as res:
        return res.status, res.headers.get("Content-Type", ""), res.read()


def main():
    base, doc_path, token = sys.argv[1:4]
    req = urllib.request.Request(base + doc_path)
    req.add_header("Authorization", "Bearer " + token)
    doc = json.load(urllib.request.urlopen(req, timeout=10))
    validate(doc)
    print("document: valid OpenAPI", doc["openapi"], "with", len(doc["paths"]), "paths")
    calls = 0
    for template, item in sorted(doc["paths"].items()):
        for method, op in item.items():
            if method.startswith("x-"):
                continue
            path = template
            query = []
            for p in op.get("parameters", []):
                value = sample(p["schema"], doc)
                if p["in"] == "path":
                    path = path.replace("{" + p["name"] + "}", urllib.parse.quote(str(value)))
                elif p["in"] == "query" and value is not None:
                    query.append((p["name"], str(value)))
            if query:
                path += "?" + urllib.parse.urlencode(query)
            body = None
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                body = sample(schema, doc)
            ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
            content = ok.get("content", {})
            stream = "application/x-ndjson" in content
            status, ctype, raw = call(
                base, token, method, path, body, "application/x-ndjson" if stream else None
            )
            assert 200 <= status < 300, (op["operationId"], status, raw)
            if stream:
                items = [json.loads(line) for line in raw.decode().splitlines() if line]
                for i in items:
                    check(i, content["application/x-ndjson"]["schema"], doc)
                print(op["operationId"], method.upper(), path, status, len(items), "items")
            elif "application/json" in content:
                value = json.loads(raw)
                check(value, content["application/json"]["schema"], doc)
                print(op["operationId"], method.upper(), path, status, json.dumps(value))
            else:
                print(op["operationId"], method.upper(), path, status)
            calls += 1
    print("calls:", calls)


if __name__ == "__main__":
    import urllib.parse  # noqa: F401  (used above)

    main()
