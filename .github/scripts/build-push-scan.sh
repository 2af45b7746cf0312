#!/usr/bin/env bash
# Build the API image, push it under an immutable tag, wait for ECR's scan-on-push
# result and fail on any CRITICAL finding.
# Env: REGISTRY (account.dkr.ecr.region.amazonaws.com), REPOSITORY, TAG.
set -euo pipefail
: "${REGISTRY:?}" "${REPOSITORY:?}" "${TAG:?}"
image="${REGISTRY}/${REPOSITORY}:${TAG}"

# Tags are immutable: a re-run of the same ref reuses the image already pushed.
if aws ecr describe-images --repository-name "$REPOSITORY" --image-ids imageTag="$TAG" >/dev/null 2>&1; then
  echo "image ${image} already exists; not rebuilding"
else
  docker build --pull -t "$image" .
  docker push "$image"
fi

aws ecr wait image-scan-complete --repository-name "$REPOSITORY" --image-id imageTag="$TAG"
critical=$(aws ecr describe-image-scan-findings --repository-name "$REPOSITORY" --image-id imageTag="$TAG" \
  --query 'imageScanFindings.findingSeverityCounts.CRITICAL' --output text)
if [ "$critical" != "None" ] && [ "$critical" != "0" ]; then
  echo "::error::${image} has ${critical} CRITICAL vulnerabilities; not deploying"
  aws ecr describe-image-scan-findings --repository-name "$REPOSITORY" --image-id imageTag="$TAG" \
    --query 'imageScanFindings.findings[?severity==`CRITICAL`].[name,uri]' --output table || true
  exit 1
fi
echo "scan clean of critical findings: ${image}"
