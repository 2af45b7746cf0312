#!/usr/bin/env bash
# Run the app project where the cluster's private API server answers: start a build of the
# environment's deployer (CodeBuild in the private subnets, infra/deployer.ts), follow it,
# show the end of its log on failure, and exit non-zero unless it succeeded: 75 when the app
# stack was locked by another run (Pulumi's lock conflict), 1 for any other failure.
# Usage: run-in-vpc.sh <stack> deploy <api-digest>
#        run-in-vpc.sh <stack> destroy
# Needs: the platform stack selectable (repository root), AWS credentials. POLL_SECONDS (15).
set -euo pipefail
stack="${1:?stack (dev|stage|prod)}"
action="${2:?action (deploy|destroy)}"
digest="${3:-}"
case "$action" in
  deploy)
    if ! [[ "$digest" =~ ^sha256:[a-f0-9]{64}$ ]]; then
      echo "::error::deploy needs the API image digest, got '${digest}'"
      exit 2
    fi ;;
  destroy) ;;
  *) echo "::error::unknown action '${action}' (deploy or destroy)"; exit 2 ;;
esac

project=$(pulumi stack output deployerProject --stack "$stack" 2>/dev/null || true)
if [ -z "$project" ] || [ "$project" = "null" ]; then
  echo "::error::platform stack ${stack} has no deployer: set pricesense:images.deployer (the release workflow does), see docs/infra.md"
  exit 1
fi

overrides=("name=ACTION,value=${action},type=PLAINTEXT")
if [ -n "$digest" ]; then overrides+=("name=API_DIGEST,value=${digest},type=PLAINTEXT"); fi
build=$(aws codebuild start-build --project-name "$project" --environment-variables-override "${overrides[@]}" --query 'build.id' --output text)
echo "deployer build ${build}: ${action} ${stack}"

status=IN_PROGRESS
while [ "$status" = "IN_PROGRESS" ]; do
  sleep "${POLL_SECONDS:-15}"
  status=$(aws codebuild batch-get-builds --ids "$build" --query 'builds[0].buildStatus' --output text)
done
link=$(aws codebuild batch-get-builds --ids "$build" --query 'builds[0].logs.deepLink' --output text || true)
if [ "$status" = "SUCCEEDED" ]; then
  echo "deployer build ${build} succeeded: ${link}"
  exit 0
fi

echo "::error::deployer build ${build} ended ${status}: ${link}"
group=$(aws codebuild batch-get-builds --ids "$build" --query 'builds[0].logs.groupName' --output text || true)
stream=$(aws codebuild batch-get-builds --ids "$build" --query 'builds[0].logs.streamName' --output text || true)
if [ -n "$group" ] && [ "$group" != "None" ] && [ -n "$stream" ] && [ "$stream" != "None" ]; then
  echo "last lines of the build log:"
  log=$(aws logs get-log-events --log-group-name "$group" --log-stream-name "$stream" --limit 80 --query 'events[].message' --output text || true)
  echo "$log"
  # Another run holds the app stack: not a failure of this release (deploy.sh must not roll back).
  if grep -qiE 'the stack is currently locked|conflict: another update is currently in progress' <<< "$log"; then
    echo "::error::the ${stack} app stack is locked by another run; nothing was changed by this build"
    exit 75
  fi
fi
exit 1
