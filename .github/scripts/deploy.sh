#!/usr/bin/env bash
# Deploy one release to one environment, by digest:
#   1. the platform stack, from here (AWS APIs only): its image references (the SageMaker
#      pipeline's defaults, the deployer's build image) become this release's digests;
#   2. the app stack, from inside the VPC (a build of the environment's deployer): `pulumi up`
#      with the policy pack, the smoke test through the private API server, and the app's
#      rollback to the previous digest when either fails (infra/deployer/in-vpc.sh).
# When 2 fails, the platform's image references go back to the previous release as well.
# Usage: deploy.sh <stack> <api-digest> <jobs-digest> <deployer-digest>
# Needs: the Pulumi CLI logged in to the backend, the environment's deploy role, npm ci done.
set -euo pipefail
stack="${1:?stack (dev|stage|prod)}"
api="${2:?API image digest}"
jobs="${3:?jobs image digest}"
deployer="${4:?deployer image digest}"
for digest in "$api" "$jobs" "$deployer"; do
  if ! [[ "$digest" =~ ^sha256:[a-f0-9]{64}$ ]]; then
    echo "::error::not an image digest: '${digest}' (environments deploy digests, never tags)"
    exit 2
  fi
done
here="$(cd "$(dirname "$0")" && pwd)"
pulumi stack select "$stack"

# The release running now, from the stack's state (CI never commits the digests it sets).
digest_of() {
  local ref
  ref=$(pulumi stack output "$1" 2>/dev/null || true)
  case "$ref" in
    *@sha256:*) echo "${ref##*@}" ;;
    *) echo "" ;;
  esac
}
previous_api=$(digest_of pipelineApiImage)
previous_jobs=$(digest_of pipelineJobsImage)
previous_deployer=$(digest_of deployerImage)

platform_up() {
  pulumi config set --path 'pricesense:images.api.digest' "$1"
  pulumi config set --path 'pricesense:images.jobs.digest' "$2"
  pulumi config set --path 'pricesense:images.deployer.digest' "$3"
  pulumi up --yes --policy-pack infra/policies
}

echo "platform ${stack}: api ${api}, jobs ${jobs}, deployer ${deployer} (previous api: ${previous_api:-none})"
platform_up "$api" "$jobs" "$deployer"

if bash "$here/run-in-vpc.sh" "$stack" deploy "$api"; then
  echo "::notice::${stack} serves ${api}"
  exit 0
fi

echo "::error::the app deploy or its smoke test failed on ${stack}; the deployer rolled the app back"
if [ -n "$previous_api" ] && [ -n "$previous_jobs" ] && [ -n "$previous_deployer" ] && [ "$previous_api" != "$api" ]; then
  echo "restoring the platform's image references to the previous release (api ${previous_api})"
  platform_up "$previous_api" "$previous_jobs" "$previous_deployer" || echo "::error::restoring the previous release on the platform stack failed"
fi
exit 1
