#!/usr/bin/env bash
# Tear an environment down in the only order that leaves nothing behind:
#   1. the app stack, from inside the VPC: deleting its LoadBalancer Service waits until the
#      load balancer (and its network interfaces in the platform's public subnets) is gone;
#   2. check that no load balancer of the cluster is left (it would hold subnets and
#      security groups, and the VPC could not be deleted);
#   3. dev only: delete the model package versions (SageMaker refuses to delete a group
#      that still has versions);
#   4. the platform stack: everything in dev; in stage and prod everything except the
#      protected data (lake, model package group), which stays (docs/infra.md,
#      "Teardown, stack by stack").
# The platform destroy is retried (DESTROY_ATTEMPTS, 3; DESTROY_RETRY_SECONDS, 120 apart): the
# network interfaces of the deployer build that just ran step 1 stay in the private subnets for
# a few minutes after it ends, and until AWS releases them deleting the deployer's security
# group or the subnets fails with DependencyViolation. A destroy is idempotent, so a retry
# only deletes what is left.
# Usage: teardown.sh <stack>
# Needs: the Pulumi CLI logged in to the backend, the environment's deploy role, npm ci done.
set -euo pipefail
stack="${1:?stack (dev|stage|prod)}"
here="$(cd "$(dirname "$0")" && pwd)"

destroy_platform() {
  local attempt=1 attempts="${DESTROY_ATTEMPTS:-3}"
  until pulumi destroy --yes "$@"; do
    if [ "$attempt" -ge "$attempts" ]; then
      echo "::error::the platform destroy of ${stack} failed ${attempts} times; if the error is DependencyViolation, look for network interfaces left in the VPC (aws ec2 describe-network-interfaces --filters Name=vpc-id,Values=<vpc>) and run the teardown again"
      return 1
    fi
    echo "::warning::platform destroy attempt ${attempt} of ${attempts} failed (the deployer build's network interfaces may still be in use); retrying in ${DESTROY_RETRY_SECONDS:-120}s"
    sleep "${DESTROY_RETRY_SECONDS:-120}"
    attempt=$(( attempt + 1 ))
  done
}
pulumi stack select "$stack"
tier=$(pulumi stack output tier)
cluster=$(pulumi stack output clusterName)

echo "1/4 ${stack}: the app stack, destroyed from inside the VPC"
deployer=$(pulumi stack output deployerProject 2>/dev/null || true)
if [ -n "$deployer" ] && [ "$deployer" != "null" ]; then
  bash "$here/run-in-vpc.sh" "$stack" destroy
else
  echo "::warning::no deployer on ${stack}: the app stack was never deployed through it; checking for load balancers only"
fi

echo "2/4 ${stack}: no load balancer of ${cluster} left"
lbs=$(aws resourcegroupstaggingapi get-resources --resource-type-filters elasticloadbalancing:loadbalancer \
  --tag-filters "Key=kubernetes.io/cluster/${cluster}" --query 'ResourceTagMappingList[].ResourceARN' --output text)
if [ -n "$lbs" ] && [ "$lbs" != "None" ]; then
  echo "::error::load balancers of ${cluster} still exist; the platform's subnets cannot be deleted while they do: ${lbs}"
  exit 1
fi

group=$(pulumi stack output modelPackageGroup)
lake=$(pulumi stack output lakeBucket)
if [ "$tier" = "dev" ]; then
  echo "3/4 ${stack}: deleting the model package versions of ${group}"
  packages=$(aws sagemaker list-model-packages --model-package-group-name "$group" --query 'ModelPackageSummaryList[].ModelPackageArn' --output text)
  for arn in $packages; do
    if [ "$arn" != "None" ]; then aws sagemaker delete-model-package --model-package-name "$arn"; fi
  done
  echo "4/4 ${stack}: destroying the platform stack"
  destroy_platform
else
  echo "3/4 ${stack} (${tier}): model package versions are kept"
  echo "4/4 ${stack}: destroying the platform stack except the protected data"
  destroy_platform --exclude-protected
  echo "::notice::${stack}: kept the lake (${lake}) and the model package group (${group}); deleting them is a separate, deliberate step (docs/infra.md)"
fi
