"""Extracts Kubernetes JSON schemas for kubeconform from a kubernetes-validate wheel (PyPI).

The wheel bundles per-version schema folders (`v1.30.0-local-strict/deployment-apps-v1.json`
+ `_definitions.json`) written for its own validator: each file has an https `$id` and refers to
`/api/_definitions.json`, which would send kubeconform to kubernetes.io. Dropping the `$id`
and making the reference relative lets them resolve to the sibling file, offline.

usage: python3 k8s_schemas.py WHEEL OUT_DIR VERSION...   (VERSION like 1.30.0)
"""
import json
import pathlib
import sys
import zipfile


def main(wheel: str, out: str, versions: list[str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for version in versions:
            prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
            members = [n for n in names if n.startswith(prefix) and n.endswith(".json")]
            if not members:
                sys.exit(f"k8s_schemas.py: {wheel} has no schemas for Kubernetes {version}")
            target = pathlib.Path(out) / f"v{version}"
            target.mkdir(parents=True, exist_ok=True)
            for member in members:
                text = archive.read(member).decode()
                text = text.replace('"/api/_definitions.json#', '"_definitions.json#')
                doc = json.loads(text)
                doc.pop("$id", None)
                (target / member[len(prefix):]).write_text(json.dumps(doc))
            print(f"[validate] Kubernetes {version}: {len(members)} schemas")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
