#!/usr/bin/env bash
# Build the three images of a release (the API runtime, the SageMaker jobs image, the in-VPC
# deployer), push each once to its shared repository under an immutable tag, wait for ECR's
# scan result (basic scan-on-push or enhanced scanning) and fail on any CRITICAL finding. Every environment then deploys the
# digests written here, never a tag: what dev scanned and smoke-tested is what prod runs.
# Env: REGISTRY (account.dkr.ecr.region.amazonaws.com), TAG; GITHUB_OUTPUT receives
# api_digest, jobs_digest, deployer_digest (stdout when unset). SCAN_WAIT_SECONDS (1800),
# SCAN_POLL_SECONDS (10).
set -euo pipefail
: "${REGISTRY:?}" "${TAG:?}"
out="${GITHUB_OUTPUT:-/dev/stdout}"
scan_err=$(mktemp)
trap 'rm -f "$scan_err"' EXIT

# Not `aws ecr wait image-scan-complete`: it gives up after 60 checks 5 s apart, and it waits
# for COMPLETE, which enhanced scanning (Amazon Inspector) never reports: its scans end ACTIVE
# (findings ready, the image stays under continuous scanning).
wait_for_scan() {
  local repository="$1" status="" started=$SECONDS
  while :; do
    # ScanNotFoundException right after the push means "not started yet"; any other error
    # (credentials, throttling that outlasted the CLI's retries, a wrong repository) stops here.
    if ! status=$(aws ecr describe-image-scan-findings --repository-name "$repository" --image-id imageTag="$TAG" \
      --query 'imageScanStatus.status' --output text 2>"$scan_err"); then
      if grep -q 'ScanNotFoundException' "$scan_err"; then
        status=PENDING
      else
        echo "::error::could not read the scan status of ${repository}:${TAG}: $(cat "$scan_err")"
        return 1
      fi
    fi
    case "$status" in
      COMPLETE|ACTIVE) return 0 ;;
      IN_PROGRESS|PENDING) ;;
      *)
        echo "::error::the scan of ${repository}:${TAG} ended ${status}; an image is deployed only with a scan result (see the repository's scan status in the ECR console)"
        return 1 ;;
    esac
    if [ $(( SECONDS - started )) -ge "${SCAN_WAIT_SECONDS:-1800}" ]; then
      echo "::error::no scan result for ${repository}:${TAG} after ${SCAN_WAIT_SECONDS:-1800}s (status ${status}); re-run the job: the push is not repeated"
      return 1
    fi
    sleep "${SCAN_POLL_SECONDS:-10}"
  done
}

# build_push_scan <name> <repository> [docker build args…]
build_push_scan() {
  local name="$1" repository="$2"
  shift 2
  local image="${REGISTRY}/${repository}:${TAG}"
  # Tags are immutable: a re-run of the same ref reuses the image already pushed.
  if aws ecr describe-images --repository-name "$repository" --image-ids imageTag="$TAG" >/dev/null 2>&1; then
    echo "image ${image} already exists; not rebuilding"
  else
    docker build --pull "$@" -t "$image" .
    docker push "$image"
  fi
  wait_for_scan "$repository"
  local critical
  critical=$(aws ecr describe-image-scan-findings --repository-name "$repository" --image-id imageTag="$TAG" \
    --query 'imageScanFindings.findingSeverityCounts.CRITICAL' --output text)
  if [ "$critical" != "None" ] && [ "$critical" != "0" ]; then
    echo "::error::${image} has ${critical} CRITICAL vulnerabilities; not deploying"
    # shellcheck disable=SC2016 # the backticks are a JMESPath literal, not a shell expansion
    aws ecr describe-image-scan-findings --repository-name "$repository" --image-id imageTag="$TAG" \
      --query 'imageScanFindings.findings[?severity==`CRITICAL`].[name,uri]' --output table || true
    exit 1
  fi
  local digest
  digest=$(aws ecr describe-images --repository-name "$repository" --image-ids imageTag="$TAG" --query 'imageDetails[0].imageDigest' --output text)
  if ! [[ "$digest" =~ ^sha256:[a-f0-9]{64}$ ]]; then
    echo "::error::ECR returned no digest for ${image} (got '${digest}')"
    exit 1
  fi
  echo "scan clean of critical findings: ${REGISTRY}/${repository}@${digest} (${TAG})"
  echo "${name}_digest=${digest}" >> "$out"
}

# Repository names: infra/images.ts (IMAGE_REPOSITORIES), created by the delivery bootstrap.
code_version="CODE_VERSION=${GITHUB_SHA:-unknown}"
build_push_scan api pricesense/api --build-arg "$code_version"
build_push_scan jobs pricesense/jobs --target jobs --build-arg "$code_version"
build_push_scan deployer pricesense/deployer -f infra/deployer/Dockerfile --build-arg "$code_version"
