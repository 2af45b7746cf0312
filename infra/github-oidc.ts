/**
 * GitHub Actions OIDC trust, written once: the delivery roles are built with it and the
 * policy pack checks every GitHub-trusting role against the same shape.
 *
 * A job that declares `environment: prod` gets a token whose `sub` is exactly
 * `repo:<owner>/<repo>:environment:prod`, and GitHub issues it only after that
 * environment's protection rules (required reviewers, branch rules) passed. Trusting that
 * exact subject, with `StringEquals` and no wildcard, is what makes the environment
 * approval the gate to the role. Trusting `ref:refs/heads/main` instead lets any job of any
 * workflow on main assume the role, approval or not.
 * https://docs.github.com/actions/deployment/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services
 */
export const GITHUB_OIDC_HOST = 'token.actions.githubusercontent.com';
export const GITHUB_OIDC_AUDIENCE = 'sts.amazonaws.com';
export const SUBJECT_KEY = `${GITHUB_OIDC_HOST}:sub`;
export const AUDIENCE_KEY = `${GITHUB_OIDC_HOST}:aud`;
/** `repo:<owner>/<repo>:environment:<env>`, nothing else and no wildcard. */
export const ENVIRONMENT_SUBJECT = /^repo:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+:environment:[A-Za-z0-9_.-]+$/;

export function environmentSubject(repository: string, environment: string): string {
  return `repo:${repository}:environment:${environment}`;
}

/** Trust policy of a role only jobs of `repository` running in `environment` can assume. */
export function environmentTrustPolicy(providerArn: string, repository: string, environment: string): object {
  return {
    Version: '2012-10-17',
    Statement: [{
      Effect: 'Allow',
      Principal: { Federated: providerArn },
      Action: 'sts:AssumeRoleWithWebIdentity',
      Condition: { StringEquals: { [AUDIENCE_KEY]: GITHUB_OIDC_AUDIENCE, [SUBJECT_KEY]: environmentSubject(repository, environment) } },
    }],
  };
}
