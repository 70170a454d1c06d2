#!/usr/bin/env python3
"""Derive spec-facts.json from SoundCloud's OpenAPI spec.

Usage: derive_spec_facts.py PATH/TO/soundcloud-openapi.yaml > spec-facts.json

Keeps facts only: for the schemas the emulator answers with (Track,
Playlist, User, Me, Error, the paginated collections Tracks, Playlists,
Users, and Found), each field's name and JSON type, whether it may be null,
and which schema nested objects and array items follow. No descriptions.

Nullability: a field may be null when the schema says `nullable: true`, or
when one of the spec's example bodies (components/examples Track, Playlist,
User, which are real responses) shows that field name as null. The spec's
own examples break its `nullable` flags (e.g. Track.description is a plain
string but null in the Track example), so the examples are taken as facts.

Two more shapes come from examples, as the spec has no response schema
for them: Token (the token endpoint's answer, example ExpiringToken) and
Status (the `{"status": ...}` body of action endpoints, example Success).
"""

import hashlib
import json
import sys

import yaml

SCHEMAS = ["Track", "Playlist", "User", "Me", "Error", "Tracks", "Playlists", "Users", "Found"]
NULL_EXAMPLES = ["Track", "Playlist", "User"]
SHAPE_EXAMPLES = {"Token": "ExpiringToken", "Status": "Success"}


def ref_name(node):
    ref = node.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else None


def describe(node, schemas):
    """The type facts of one schema node."""
    name = ref_name(node)
    if name:
        target = schemas[name]
        return {"type": target.get("type", "object"), "nullable": bool(target.get("nullable")), "ref": name}
    if "allOf" in node:
        out = {"type": "object", "nullable": bool(node.get("nullable"))}
        for part in node["allOf"]:
            sub = describe(part, schemas) if ("$ref" in part or "type" in part) else {}
            if sub.get("ref"):
                out["ref"] = sub["ref"]
            if sub.get("nullable"):
                out["nullable"] = True
            if part.get("type"):
                out["type"] = part["type"]
        return out
    default = "array" if "items" in node else "object"
    out = {"type": node.get("type", default), "nullable": bool(node.get("nullable"))}
    if out["type"] == "array" and isinstance(node.get("items"), dict):
        items = node["items"]
        if ref_name(items) or items.get("type") in ("object", "string", "integer", "number", "boolean"):
            out["items"] = describe(items, schemas)
    if out["type"] == "object" and isinstance(node.get("properties"), dict):
        out["fields"] = {k: describe(v, schemas) for k, v in sorted(node["properties"].items())}
    return out


def json_type(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def main(path):
    raw = open(path, "rb").read()
    spec = yaml.safe_load(raw)
    schemas = spec["components"]["schemas"]
    examples = spec["components"]["examples"]

    null_fields = set()
    for name in NULL_EXAMPLES:
        for field, value in examples[name]["value"].items():
            if value is None:
                null_fields.add(field)

    facts = {}
    for name in SCHEMAS:
        schema = schemas[name]
        fields = {}
        for field, node in sorted(schema.get("properties", {}).items()):
            fact = describe(node, schemas)
            if name in NULL_EXAMPLES + ["Me"] and field in null_fields:
                fact["nullable"] = True
            fields[field] = fact
        facts[name] = {"nullable": bool(schema.get("nullable")), "fields": fields}
    for name, example in SHAPE_EXAMPLES.items():
        value = examples[example]["value"]
        facts[name] = {
            "nullable": False,
            "fields": {k: {"type": json_type(v), "nullable": False} for k, v in sorted(value.items())},
        }

    out = {
        "source": "soundcloud-openapi.yaml (soundcloud/api openapi/api.yaml)",
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "derived_by": "emulator/tests/emulator/derive_spec_facts.py",
        "null_from_examples": sorted(null_fields),
        "schemas": facts,
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/soundcloud-openapi.yaml")
