#!/usr/bin/env bash
# Wait until no older run of this repository's delivery workflows still touches <stack>: a
# job named deploy-<stack> (release.yml) or "teardown <stack>" (teardown.yml) that is not
# completed. Runs in a job of its own with no concurrency group, right before the job that
# takes the stack's group (deploy-<stack>): GitHub keeps one pending job per group and cancels
# the older pending one, so a run only enters the group once the runs ahead of it are done,
# and a tag run is not replaced while it waits. See docs/delivery.md, "Concurrency".
# Usage: wait-turn.sh <stack>
# Needs: gh (GH_TOKEN with actions:read), GITHUB_REPOSITORY, GITHUB_RUN_ID. POLL_SECONDS (30),
# WAIT_TURN_MINUTES (180).
set -euo pipefail
stack="${1:?stack (dev|stage|prod)}"
repo="${GITHUB_REPOSITORY:?}"
ours="${GITHUB_RUN_ID:?}"
deadline=$(( $(date +%s) + 60 * ${WAIT_TURN_MINUTES:-180} ))

# Older runs (lower id) of release.yml and teardown.yml that are not completed.
older_runs() {
  local workflow status
  for workflow in release.yml teardown.yml; do
    for status in queued in_progress waiting pending requested; do
      gh api "repos/${repo}/actions/workflows/${workflow}/runs?status=${status}&per_page=100" \
        --jq ".workflow_runs[] | select(.id < ${ours}) | .id"
    done
  done | sort -un
}
# Whether run $1 has a job on this stack that is not completed.
touches_stack() {
  local jobs
  jobs=$(gh api "repos/${repo}/actions/runs/$1/jobs?per_page=100" \
    --jq ".jobs[] | select(.status != \"completed\") | select(.name == \"deploy-${stack}\" or .name == \"teardown ${stack}\") | .name")
  [ -n "$jobs" ]
}

while :; do
  blocking=""
  for run in $(older_runs); do
    if touches_stack "$run"; then blocking="$run"; break; fi
  done
  if [ -z "$blocking" ]; then
    echo "no older run touches ${stack}: going ahead"
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "::error::run ${blocking} still touches ${stack} after ${WAIT_TURN_MINUTES:-180} minutes; re-run this job once it is done"
    exit 1
  fi
  echo "waiting for run ${blocking} (https://github.com/${repo}/actions/runs/${blocking}), which still touches ${stack}"
  sleep "${POLL_SECONDS:-30}"
done
