"""An independent verdict on OpenAPI example responses: for every GET operation of a document
with a JSON success response, each documented example validated against the response schema by
openapi-schema-validator (Python jsonschema with the OpenAPI 3.0 / 3.1 schema dialects, `$ref`s
resolved in the document). Prints one JSON object per line:
{"operation": operationId, "example": index, "valid": bool}.

Vigil departs from the letter of OpenAPI 3.0 in two documented ways, and the oracle applies
them to the document first, so that everything else is compared:
- a `nullable` schema with an `enum` admits null even when the enum does not list it (real
  APIs, GitHub's among them, return null there);
- a `discriminator` is a hint for tools; validation is `oneOf`/`anyOf`'s alone.

Usage: oracle.py DOCUMENT.json
"""

import json
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
from jsonschema.validators import RefResolver  # noqa: E402  (deprecated, still exact)
from openapi_schema_validator import OAS30Validator, OAS31Validator


def deref(doc, value):
    while isinstance(value, dict) and "$ref" in value:
        pointer = value["$ref"][2:].split("/")
        value = doc
        for part in pointer:
            value = value[part.replace("~1", "/").replace("~0", "~")]
    return value


def depart(value):
    """Applies Vigil's two departures (see above) everywhere in the document."""
    if isinstance(value, dict):
        value.pop("discriminator", None)
        enum = value.get("enum")
        if value.get("nullable") is True and isinstance(enum, list) and None not in enum:
            enum.append(None)
        for v in value.values():
            depart(v)
    elif isinstance(value, list):
        for v in value:
            depart(v)


def main(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    depart(doc)
    validator_class = OAS31Validator if doc["openapi"].startswith("3.1") else OAS30Validator
    resolver = RefResolver.from_schema(doc)
    for item in doc["paths"].values():
        op = item.get("get")
        if not op or "operationId" not in op:
            continue
        codes = sorted(c for c in op.get("responses", {}) if c.startswith("2"))
        if not codes:
            continue
        response = deref(doc, op["responses"][codes[0]])
        media = response.get("content", {}).get("application/json")
        if not media or "schema" not in media:
            continue
        # In key order, as the test reads them.
        named = sorted(media.get("examples", {}).items())
        examples = [deref(doc, e).get("value") for _, e in named]
        if "example" in media:
            examples.append(media["example"])
        validator = validator_class(media["schema"], resolver=resolver)
        for i, example in enumerate(examples):
            valid = validator.is_valid(example)
            print(json.dumps({"operation": op["operationId"], "example": i, "valid": valid}))


if __name__ == "__main__":
    main(sys.argv[1])
