"""Turns CustomResourceDefinitions (JSON) into kubeconform schemas, one file per served version.

Like kubeconform's own openapi2jsonschema.py in strict mode: an object schema that declares
`properties` and neither `additionalProperties` nor `x-kubernetes-preserve-unknown-fields`
rejects unknown fields, so a misspelt field fails validation instead of being ignored.
File name: <kind>-<first part of the group>-<version>.json, kubeconform's
{{.ResourceKind}}{{.KindSuffix}} (KafkaTopic in kafka.strimzi.io/v1beta2 →
kafkatopic-kafka-v1beta2.json).

usage: python3 crd_schemas.py OUT_DIR CRD.json...
"""
import json
import pathlib
import sys


def strict(schema):
    if isinstance(schema, dict):
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main(out: str, crds: list[str]) -> None:
    target = pathlib.Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for path in crds:
        crd = json.loads(pathlib.Path(path).read_text())
        spec = crd["spec"]
        kind = spec["names"]["kind"].lower()
        group = spec["group"].split(".")[0]
        for version in spec["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            # metadata is `type: object` in CRDs: the API server checks it, so must we, loosely.
            schema.setdefault("properties", {})["metadata"] = {"type": "object"}
            schema.setdefault("required", [])
            for field in ("apiVersion", "kind"):
                if field not in schema["required"]:
                    schema["required"].append(field)
            name = f"{kind}-{group}-{version['name']}.json"
            (target / name).write_text(json.dumps(schema))
            print(f"[validate] CRD schema {name}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
