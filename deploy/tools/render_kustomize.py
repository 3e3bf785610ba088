#!/usr/bin/env python3
"""Renders a kustomization the way `kustomize build` does, for the subset deploy/k8s uses, and refuses
anything else (an unknown key, a patch target that matches nothing), so a render here is a real check.

Supported: resources (files of one or more documents, or directories holding a kustomization), namespace,
labels (pairs, without selectors), images (name → newName/newTag), replicas, and patches given as inline
JSON 6902 operations with a kind/name target. Prints the rendered documents as one YAML stream."""
import copy
import os
import sys

import jsonpatch
import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "replicas", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def fail(message):
    sys.exit(f"render_kustomize: {message}")


def render(directory):
    path = os.path.join(directory, "kustomization.yaml")
    with open(path) as f:
        k = yaml.safe_load(f)
    unknown = set(k) - SUPPORTED
    if unknown:
        fail(f"{path}: unsupported keys {sorted(unknown)}")
    docs = []
    for resource in k.get("resources", []):
        target = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(target):
            docs.extend(render(target))
        else:
            with open(target) as f:
                docs.extend(d for d in yaml.safe_load_all(f) if d is not None)
    namespace = k.get("namespace")
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        if namespace:
            if doc["kind"] == "Namespace":
                meta["name"] = namespace
            elif doc["kind"] not in CLUSTER_SCOPED:
                meta["namespace"] = namespace
        for group in k.get("labels", []):
            if group.get("includeSelectors") or set(group) - {"pairs", "includeSelectors", "includeTemplates"}:
                fail(f"{path}: only plain label pairs are supported")
            meta.setdefault("labels", {}).update(group["pairs"])
    for image in k.get("images", []):
        for doc in docs:
            for container in containers(doc):
                name, _, _ = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = image.get("newName", name) + ":" + str(image.get("newTag", "latest"))
    for rep in k.get("replicas", []):
        hits = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == rep["name"]]
        if not hits:
            fail(f"{path}: replicas for {rep['name']} match nothing")
        for d in hits:
            d["spec"]["replicas"] = rep["count"]
    for patch in k.get("patches", []):
        target = patch["target"]
        ops = yaml.safe_load(patch["patch"])
        hits = [i for i, d in enumerate(docs) if d["kind"] == target["kind"] and d["metadata"]["name"] == target["name"]]
        if not hits:
            fail(f"{path}: patch target {target} matches nothing")
        for i in hits:
            docs[i] = jsonpatch.apply_patch(copy.deepcopy(docs[i]), ops)
    return docs


def containers(doc):
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else {}
    return pod.get("containers", []) + pod.get("initContainers", [])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: render_kustomize.py DIR")
    print(yaml.safe_dump_all(render(sys.argv[1]), sort_keys=False), end="")
