#!/usr/bin/env bash
# Runs inside the VPC, in a build of the environment's deployer (infra/deployer.ts), where the
# cluster's private API server answers:
#   deploy:  the app project's `pulumi up` with the policy pack at API_DIGEST, the rollout and
#            the smoke test through the API server. No rollback here: this build runs the new
#            release's app program, which must not be what puts the old image back.
#            .github/scripts/deploy.sh rolls back by restoring the previous release's deployer
#            image and running this script again, as that release, with its digest;
#   destroy: the app stack's destroy, then a check that no LoadBalancer Service is left in the
#            cluster (its load balancer would keep the VPC from being deleted).
# Usage: in-vpc.sh deploy|destroy
# Env (the deployer project): STACK, PULUMI_BACKEND_URL; (start-build): ACTION, API_DIGEST.
set -euo pipefail
action="${1:?action (deploy|destroy)}"
: "${STACK:?}" "${PULUMI_BACKEND_URL:?}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/infra/app"

pulumi login "$PULUMI_BACKEND_URL"
# The app stacks are created with their environment's KMS secrets provider at bootstrap
# (docs/infra.md); a build never creates a stack.
pulumi stack select "$STACK"
KUBECONFIG="$(mktemp)"
export KUBECONFIG
pulumi stack output --stack "organization/pricesense/${STACK}" kubeconfig --show-secrets > "$KUBECONFIG"

load_balancers() {
  kubectl get services --all-namespaces -o jsonpath='{range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'
}

case "$action" in
  destroy)
    pulumi destroy --yes
    left=$(load_balancers)
    if [ -n "$left" ]; then
      echo "LoadBalancer Services are still in the cluster; their load balancers would hold the VPC: ${left}" >&2
      exit 1
    fi
    echo "${STACK}: app stack destroyed, no load balancer left"
    exit 0 ;;
  deploy) ;;
  *) echo "unknown action '${action}' (deploy or destroy)" >&2; exit 2 ;;
esac

: "${API_DIGEST:?}"
echo "deploying ${API_DIGEST} to ${STACK}"

deploy() {
  pulumi config set --path 'pricesense:app.image.digest' "$1"
  pulumi up --yes --policy-pack ../policies
}

smoke() {
  kubectl -n mlops rollout status deployment/pricesense-api --timeout=10m || return 1
  kubectl -n mlops port-forward service/pricesense-api 18080:8080 >/dev/null 2>&1 &
  local forward=$! rc=0
  pricesense smoke-test --url http://127.0.0.1:18080 --timeout 300 || rc=$?
  kill "$forward" 2>/dev/null || true
  return "$rc"
}

# Without a Ready node the rollout, the smoke test and the rollback would all time out; in dev
# the node groups sleep outside demo hours and deploy.sh has just scaled them up.
ready_nodes() {
  kubectl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -cx True || true
}
started=$SECONDS
until [ "$(ready_nodes)" -gt 0 ]; do
  waited=$(( SECONDS - started ))
  if [ "$waited" -ge "${NODE_WAIT_SECONDS:-900}" ]; then
    echo "no Ready node in ${STACK} after ${waited}s: nothing can run the API. Are the node groups scaled to zero (cost.demoHours)? deploy.sh scales them up; by hand: aws eks update-nodegroup-config (docs/delivery.md)" >&2
    exit 1
  fi
  echo "waiting for a Ready node in ${STACK} (${waited}s)"
  sleep "${POLL_SECONDS:-15}"
done

# An unpullable or crash-looping image fails `pulumi up` itself (the Deployment never becomes
# ready); either failure fails the build, and deploy.sh rolls the whole release back.
if deploy "$API_DIGEST" && smoke; then
  echo "${STACK} serves ${API_DIGEST}"
  exit 0
fi
echo "deploy or smoke test failed on ${STACK} with ${API_DIGEST}" >&2
exit 1
