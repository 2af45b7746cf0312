#!/usr/bin/env bash
# Build the API image and the SageMaker jobs image, push them under immutable tags,
# wait for ECR's scan-on-push results and fail on any CRITICAL finding.
# Env: REGISTRY (account.dkr.ecr.region.amazonaws.com), REPOSITORY, TAG.
set -euo pipefail
: "${REGISTRY:?}" "${REPOSITORY:?}" "${TAG:?}"

# build_push_scan <tag> [docker build args…]
build_push_scan() {
  local t="$1"; shift
  local image="${REGISTRY}/${REPOSITORY}:${t}"
  # Tags are immutable: a re-run of the same ref reuses the image already pushed.
  if aws ecr describe-images --repository-name "$REPOSITORY" --image-ids imageTag="$t" >/dev/null 2>&1; then
    echo "image ${image} already exists; not rebuilding"
  else
    docker build --pull "$@" -t "$image" .
    docker push "$image"
  fi
  aws ecr wait image-scan-complete --repository-name "$REPOSITORY" --image-id imageTag="$t"
  local critical
  critical=$(aws ecr describe-image-scan-findings --repository-name "$REPOSITORY" --image-id imageTag="$t" \
    --query 'imageScanFindings.findingSeverityCounts.CRITICAL' --output text)
  if [ "$critical" != "None" ] && [ "$critical" != "0" ]; then
    echo "::error::${image} has ${critical} CRITICAL vulnerabilities; not deploying"
    aws ecr describe-image-scan-findings --repository-name "$REPOSITORY" --image-id imageTag="$t" \
      --query 'imageScanFindings.findings[?severity==`CRITICAL`].[name,uri]' --output table || true
    exit 1
  fi
  echo "scan clean of critical findings: ${image}"
}

# The API image (default target) and the SageMaker jobs image the pipeline defaults to (<tag>-jobs).
build_push_scan "$TAG" --build-arg "CODE_VERSION=${GITHUB_SHA:-unknown}"
build_push_scan "${TAG}-jobs" --target jobs --build-arg "CODE_VERSION=${GITHUB_SHA:-unknown}"
