#!/usr/bin/env bash
# Deploy one image tag to one stack, smoke-test it, and roll back to the previous
# tag if the smoke test fails.  Usage: deploy.sh <stack> <image-tag>
# Needs: Pulumi CLI (logged in to the backend), AWS credentials, kubectl, npm ci done.
set -euo pipefail
stack="${1:?stack (dev|stage|prod)}"
tag="${2:?image tag}"
pulumi stack select "$stack"

previous=$(pulumi config get --path 'pricesense:app.image.tag' 2>/dev/null || true)
echo "deploying ${tag} to ${stack} (previous: ${previous:-none})"

deploy() {
  pulumi config set --path 'pricesense:app.image.tag' "$1"
  pulumi up --yes --skip-preview --diff=false
}

smoke() {
  local url pf_pid=""
  url=$(pulumi stack output apiEndpoint 2>/dev/null || true)
  if [ -z "$url" ] || [ "$url" = "null" ]; then
    # No public endpoint (the default outside demos): go through the Kubernetes API.
    aws eks update-kubeconfig --name "$(pulumi stack output clusterName)" --alias "pricesense-${stack}" >/dev/null
    kubectl -n mlops rollout status deployment/pricesense-api --timeout=10m
    kubectl -n mlops port-forward service/pricesense-api 18080:8080 >/dev/null 2>&1 &
    pf_pid=$!
    url="http://127.0.0.1:18080"
  fi
  local rc=0
  npx pricesense smoke-test --url "$url" --timeout 300 || rc=$?
  [ -n "$pf_pid" ] && kill "$pf_pid" 2>/dev/null || true
  return "$rc"
}

deploy "$tag"
if smoke; then
  echo "::notice::${stack} serves ${tag}"
  exit 0
fi

echo "::error::smoke test failed on ${stack} with ${tag}"
if [ -n "$previous" ] && [ "$previous" != "$tag" ]; then
  echo "rolling ${stack} back to ${previous}"
  deploy "$previous"
  smoke || echo "::error::the previous image ${previous} also fails its smoke test"
fi
exit 1
