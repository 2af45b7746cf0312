#!/usr/bin/env bash
# Deploy one release to one environment, by digest:
#   1. the platform stack, from here (AWS APIs only): its image references (the SageMaker
#      pipeline's defaults, the deployer's build image) become this release's digests;
#   2. the app stack, from inside the VPC (a build of the environment's deployer): `pulumi up`
#      with the policy pack and the smoke test through the private API server
#      (infra/deployer/in-vpc.sh).
# When 2 fails, the previous release comes back whole: first its image references on the
# platform (which include the deployer image, i.e. its app program), then 2 with its API image.
# A stack with demo hours (dev) may have its node groups at zero: they are scaled up to their
# configured size before the deploy (its rollout, smoke test and rollback need nodes) and, if
# the deploy ends outside demo hours, back to zero afterwards, as the schedule would have them.
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

# in_demo_hours "<timezone> <days> <start> <end>": whether now (PRICESENSE_NOW, for tests) is
# inside the schedule of infra/cost.ts (days as in cron: MON-FRI, MON,WED,FRI).
# shellcheck disable=SC2317 # called from the EXIT trap (sleep_nodes)
in_demo_hours() {
  local tz days start end day hhmm range from to d
  read -r tz days start end <<< "$1"
  day=$(TZ="$tz" date -d "${PRICESENSE_NOW:-now}" +%u)
  hhmm=$(TZ="$tz" date -d "${PRICESENSE_NOW:-now}" +%H:%M)
  [[ "$hhmm" < "$start" || ! "$hhmm" < "$end" ]] && return 1
  for range in ${days//,/ }; do
    from=$(day_number "${range%%-*}")
    to=$(day_number "${range##*-}")
    d=$from
    while :; do
      [ "$d" = "$day" ] && return 0
      [ "$d" = "$to" ] && break
      d=$(( d % 7 + 1 ))
    done
  done
  return 1
}
# shellcheck disable=SC2317 # called from the EXIT trap (sleep_nodes)
day_number() {
  case "$1" in MON) echo 1 ;; TUE) echo 2 ;; WED) echo 3 ;; THU) echo 4 ;; FRI) echo 5 ;; SAT) echo 6 ;; SUN) echo 7 ;; esac
}

demo_hours=$(pulumi stack output demoHours 2>/dev/null || true)
[ "$demo_hours" = "null" ] && demo_hours=""
cluster=""
woken=()
# Node groups the schedule scaled to zero go to their configured size for the deploy.
wake_nodes() {
  [ -n "$demo_hours" ] || return 0
  cluster=$(pulumi stack output clusterName)
  local group name desired max current
  for group in $(pulumi stack output scheduledNodeGroups); do
    IFS=: read -r name desired max <<< "$group"
    current=$(aws eks describe-nodegroup --cluster-name "$cluster" --nodegroup-name "$name" --query 'nodegroup.scalingConfig.desiredSize' --output text)
    if [ "$current" = "0" ]; then
      echo "${name} is scaled to zero (demo hours: ${demo_hours}); scaling it to ${desired} for the deploy"
      aws eks update-nodegroup-config --cluster-name "$cluster" --nodegroup-name "$name" --scaling-config "minSize=0,maxSize=${max},desiredSize=${desired}" >/dev/null
      woken+=("${name}:${max}")
    fi
  done
  for group in "${woken[@]}"; do
    aws eks wait nodegroup-active --cluster-name "$cluster" --nodegroup-name "${group%%:*}"
  done
}
# ...and back to zero when the deploy ends outside demo hours (inside them the schedule wants them up).
# shellcheck disable=SC2317 # called from the EXIT trap (sleep_nodes)
sleep_nodes() {
  [ "${#woken[@]}" -gt 0 ] || return 0
  if in_demo_hours "$demo_hours"; then
    echo "inside demo hours now: leaving ${woken[*]%%:*} up"
    return 0
  fi
  local group
  for group in "${woken[@]}"; do
    echo "outside demo hours: scaling ${group%%:*} back to zero"
    { aws eks wait nodegroup-active --cluster-name "$cluster" --nodegroup-name "${group%%:*}" &&
      aws eks update-nodegroup-config --cluster-name "$cluster" --nodegroup-name "${group%%:*}" --scaling-config "minSize=0,maxSize=${group##*:},desiredSize=0" >/dev/null; } ||
      echo "::warning::could not scale ${group%%:*} back to zero; the next end of demo hours will"
  done
}
trap sleep_nodes EXIT
wake_nodes

LOCKED=75
# Pulumi's lock conflict: another run is updating the stack. Nothing of ours was applied, and
# rolling back would overwrite that run's release, so the job fails here, saying so.
locked() {
  echo "::error::the ${stack} $1 stack is locked by another run (a deploy or teardown of ${stack} outside the deploy-${stack} group, or a stale lock): nothing was rolled back; re-run this job once that run is done, or clear a stale lock with 'pulumi cancel' (docs/delivery.md, \"Concurrency\")"
  exit "$LOCKED"
}
platform_up() {
  local out rc=0
  pulumi config set --path 'pricesense:images.api.digest' "$1"
  pulumi config set --path 'pricesense:images.jobs.digest' "$2"
  pulumi config set --path 'pricesense:images.deployer.digest' "$3"
  out=$(pulumi up --yes --policy-pack infra/policies 2>&1) || rc=$?
  echo "$out"
  if [ "$rc" -ne 0 ] && grep -qiE 'the stack is currently locked|conflict: another update is currently in progress' <<< "$out"; then locked platform; fi
  return "$rc"
}

echo "platform ${stack}: api ${api}, jobs ${jobs}, deployer ${deployer} (previous api: ${previous_api:-none})"
platform_up "$api" "$jobs" "$deployer"

deployed=0
bash "$here/run-in-vpc.sh" "$stack" deploy "$api" || deployed=$?
if [ "$deployed" -eq 0 ]; then
  echo "::notice::${stack} serves ${api}"
  exit 0
fi
[ "$deployed" -eq "$LOCKED" ] && locked app

echo "::error::the app deploy or its smoke test failed on ${stack}"
# Only this run's release is rolled back: if the platform no longer holds its digests, another
# run has deployed since, and rolling back would overwrite that release.
if [ "$(digest_of pipelineApiImage)" != "$api" ] || [ "$(digest_of pipelineJobsImage)" != "$jobs" ] || [ "$(digest_of deployerImage)" != "$deployer" ]; then
  echo "::error::the ${stack} platform no longer holds this run's digests (another run deployed since): nothing was rolled back"
  exit 1
fi
if [ -z "$previous_api" ] || [ -z "$previous_jobs" ] || [ -z "$previous_deployer" ]; then
  echo "::error::${stack} had no previous release to roll back to"
  exit 1
fi
if [ "$previous_api" = "$api" ] && [ "$previous_jobs" = "$jobs" ] && [ "$previous_deployer" = "$deployer" ]; then
  echo "::error::the failed release is the one that ran before; nothing to roll back to"
  exit 1
fi
# The rollback is the previous release as a whole: its image references on the platform
# (which puts its deployer image back on the CodeBuild project), then its app program, run by
# that deployer image, with its API image. The new release's app program never runs the old image.
echo "rolling ${stack} back to the previous release (api ${previous_api}, deployer ${previous_deployer})"
if ! platform_up "$previous_api" "$previous_jobs" "$previous_deployer"; then
  echo "::error::restoring the previous release on the platform stack failed; the app was not rolled back"
  exit 1
fi
if bash "$here/run-in-vpc.sh" "$stack" deploy "$previous_api"; then
  echo "::error::${stack} rolled back to ${previous_api}"
else
  echo "::error::the previous release ${previous_api} also fails to deploy or smoke-test on ${stack}"
fi
exit 1
