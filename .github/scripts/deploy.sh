#!/usr/bin/env bash
# Deploy one image tag to one stack, smoke-test it, and roll back to the previous
# tag if the smoke test fails.  Usage: deploy.sh <stack> <image-tag>
# Needs: Pulumi CLI (logged in to the backend), AWS credentials, kubectl, npm ci done.
set -euo pipefail
stack="${1:?stack (dev|stage|prod)}"
tag="${2:?image tag}"
pulumi stack select "$stack"

# The tag running now comes from the stack's state (its apiImage output), not from the
# checked-out Pulumi.<stack>.yaml: CI never commits the tag it sets.
previous_image=$(pulumi stack output apiImage 2>/dev/null || true)
previous=""
case "$previous_image" in
  *@sha256:*|""|null) ;;                    # deployed by digest, or never deployed: nothing to roll back to by tag
  *:*) previous="${previous_image##*:}" ;;
esac
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

# A crash-looping or unpullable image fails `pulumi up` itself (the Deployment never
# becomes ready), so a failed deploy and a failed smoke test both lead to the rollback.
if deploy "$tag" && smoke; then
  echo "::notice::${stack} serves ${tag}"
  exit 0
fi

echo "::error::deploy or smoke test failed on ${stack} with ${tag}"
if [ -n "$previous" ] && [ "$previous" != "$tag" ]; then
  echo "rolling ${stack} back to ${previous}"
  if deploy "$previous" && smoke; then
    echo "::warning::${stack} rolled back to ${previous}"
  else
    echo "::error::the previous image ${previous} also fails to deploy or smoke-test"
  fi
fi
exit 1
