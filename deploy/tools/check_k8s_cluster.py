#!/usr/bin/env python3
"""Validates every CloudNativePG `Cluster` in a rendered YAML stream against the vendored CRD schema
(schemas/cnpg-cluster-v1.json), unknown fields included, since kubernetes-validate has no schema for it."""
import json
import os
import sys

import jsonschema
import yaml


def closed(schema):
    """Structural CRD schemas reject unknown fields (the API server prunes or refuses them): close every object."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "schemas", "cnpg-cluster-v1.json")) as f:
    schema = closed(json.load(f))
schema["properties"]["metadata"] = {"type": "object"}
with open(sys.argv[1]) as f:
    clusters = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "Cluster"]
if not clusters:
    sys.exit("check_k8s_cluster: no Cluster in the rendered manifests")
errors = 0
for c in clusters:
    for e in jsonschema.Draft7Validator(schema).iter_errors(c):
        print(f"Cluster/{c['metadata']['name']}: {'/'.join(map(str, e.path))}: {e.message}")
        errors += 1
    if not errors:
        print(f"Cluster/{c['metadata']['name']}: valid against CloudNativePG's schema")
sys.exit(1 if errors else 0)
