/**
 * AWS SDK errors, translated in one place. Every backend that talks to AWS (the S3 lake,
 * the SageMaker registry, `pipeline start`) hands its failures here with only its own
 * context (what it was doing, on what, which IAM permission that needs); the problem, its
 * kind (so its exit code and HTTP status) and the message skeleton are decided here, so
 * "no credentials" or "access denied" means the same everywhere.
 *
 * No AWS SDK import: an SDK error is read by its shape (name, code, $metadata, cause),
 * which is also what the SDK documents as stable across clients.
 */
import type { ErrorKind } from './error-kinds';
import { UserError } from './errors';

/** What went wrong with an AWS request, independent of the service. */
export type AwsProblem =
  | 'no_credentials'
  | 'bad_credentials'
  | 'no_region'
  | 'denied'
  | 'throttled'
  | 'quota'
  | 'unreachable'
  | 'not_found';

export const AWS_PROBLEM_KINDS: Record<AwsProblem, ErrorKind> = {
  no_credentials: 'denied',
  bad_credentials: 'denied',
  no_region: 'validation',
  denied: 'denied',
  throttled: 'throttled',
  quota: 'throttled',
  unreachable: 'unavailable',
  not_found: 'not_found',
};

/** What the backend was doing, in its own words; the rest of the message comes from here. */
export interface AwsErrorContext {
  /** The service as people name it: 'S3', 'SageMaker'. */
  readonly service: string;
  /** The whole resource the backend works on (a lake root, a registry URI, a pipeline), for credential, region and endpoint messages. */
  readonly scope: string;
  /** The operation: 'write', 'CreateModelPackage', … */
  readonly action: string;
  /** The object or resource of this request (an S3 URI, a model package ARN, …). */
  readonly target: string;
  /** The IAM permission the action needs, with its resource: "s3:PutObject on arn:aws:s3:::bucket/prefix/*". */
  readonly permission: string;
  /** Where the IAM policy is documented, if anywhere: "docs/registry.md lists the IAM policy". */
  readonly policyDoc?: string;
  /** The settings that choose the endpoint, for "unreachable": "PRICESENSE_S3_ENDPOINT / AWS_ENDPOINT_URL_S3". */
  readonly endpointSettings?: string;
  /** The message for "not found"; without it a not-found error is left to the caller (who may expect it). */
  readonly notFound?: string;
}

/** A translated AWS failure: a UserError whose kind follows from the problem. */
export class AwsError extends UserError {
  readonly problem: AwsProblem;
  /** The SDK's error name (or socket code), for logs and for callers that branch on it. */
  readonly awsName: string;
  constructor(problem: AwsProblem, message: string, awsName: string) {
    super(message, AWS_PROBLEM_KINDS[problem]);
    this.name = 'AwsError';
    this.problem = problem;
    this.awsName = awsName;
  }
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  cause?: { code?: string };
}

const NO_CREDENTIALS = new Set(['CredentialsProviderError']);
// S3 (InvalidAccessKeyId, SignatureDoesNotMatch), the JSON services (UnrecognizedClientException,
// InvalidSignatureException), STS and expired session tokens.
const BAD_CREDENTIALS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
  'TokenRefreshRequired',
]);
const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden']);
const THROTTLED = /^(Throttl|TooManyRequests|RequestLimitExceeded|SlowDown|RequestThrottled|ProvisionedThroughputExceeded)/i;
const NOT_FOUND = new Set(['NotFound', 'NoSuchKey', 'ResourceNotFound', 'ResourceNotFoundException']);
const NETWORK_CODES = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'];

function shapeOf(err: unknown): SdkErrorShape {
  return err !== null && typeof err === 'object' ? (err as SdkErrorShape) : {};
}

/** The SDK's name for the error ('' if it has none). */
export function awsErrorName(err: unknown): string {
  const e = shapeOf(err);
  return e.name ?? e.code ?? '';
}

/** The HTTP status AWS answered with, if a response came. */
export function awsHttpStatus(err: unknown): number | undefined {
  return shapeOf(err).$metadata?.httpStatusCode;
}

/** The socket error behind a failed request, if it is one; the SDK sometimes keeps it only in the message. */
export function networkErrorCode(err: unknown): string | undefined {
  const e = shapeOf(err);
  for (const code of [e.code, e.cause?.code]) if (code && NETWORK_CODES.includes(code)) return code;
  if (e.name === 'TimeoutError') return 'timeout';
  return new RegExp(`\\b(${NETWORK_CODES.join('|')})\\b`).exec(e.message ?? '')?.[1];
}

/**
 * Whether AWS said the resource does not exist. SageMaker says so for some describes with a
 * ValidationException ("… does not exist"); HEAD requests have no body, only a 404.
 */
export function isAwsNotFound(err: unknown): boolean {
  const name = awsErrorName(err);
  if (NOT_FOUND.has(name) || awsHttpStatus(err) === 404) return true;
  return name === 'ValidationException' && /does not exist|not found|cannot be found/i.test(shapeOf(err).message ?? '');
}

/** The problem an SDK error is, or undefined for one this module does not know (the caller's to handle). */
export function awsProblemOf(err: unknown): AwsProblem | undefined {
  if (err instanceof AwsError) return err.problem;
  const name = awsErrorName(err);
  const message = shapeOf(err).message ?? '';
  if (NO_CREDENTIALS.has(name) || /Could not load credentials/i.test(message)) return 'no_credentials';
  if (BAD_CREDENTIALS.has(name)) return 'bad_credentials';
  if (/Region is missing/i.test(message)) return 'no_region';
  if (isAwsNotFound(err)) return 'not_found';
  if (DENIED.has(name) || awsHttpStatus(err) === 403) return 'denied';
  if (THROTTLED.test(name)) return 'throttled';
  if (name === 'ResourceLimitExceeded' || name === 'ServiceQuotaExceededException') return 'quota';
  if (networkErrorCode(err) !== undefined) return 'unreachable';
  return undefined;
}

/** AWS's own text when it says more than the error's name (a denial naming the principal does; S3's "Access Denied" does not). */
function awsDetail(err: unknown, name: string): string | undefined {
  const message = shapeOf(err).message?.trim();
  if (!message) return undefined;
  const plain = (s: string): string => s.toLowerCase().replace(/[^a-z]/g, '');
  return plain(message) === plain(name) || plain(message) === 'accessdenied' ? undefined : message;
}

/**
 * The SDK error as an AwsError whose message says what to do, or undefined when it is none
 * of the problems above (or a not-found the context has no message for): the caller then
 * handles or rethrows it. An AwsError passes through unchanged.
 */
export function translateAwsError(err: unknown, ctx: AwsErrorContext): AwsError | undefined {
  if (err instanceof AwsError) return err;
  const problem = awsProblemOf(err);
  if (problem === undefined) return undefined;
  const name = awsErrorName(err);
  const detail = awsDetail(err, name);
  switch (problem) {
    case 'no_credentials':
      return new AwsError(
        problem,
        `no AWS credentials for ${ctx.scope}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, ` +
          'or run with an IAM role (instance profile, IRSA)',
        name,
      );
    case 'bad_credentials':
      return new AwsError(
        problem,
        `${ctx.service} rejected the credentials for ${ctx.scope} (${name}): check AWS_ACCESS_KEY_ID and ` +
          'AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), that a session token has not expired, and that they belong to the account of the endpoint in use',
        name,
      );
    case 'no_region':
      return new AwsError(problem, `no AWS region for ${ctx.scope}: set AWS_REGION (e.g. AWS_REGION=eu-west-1)`, name);
    case 'denied':
      return new AwsError(
        problem,
        `access denied to ${ctx.target} (${ctx.action}): the credentials in use need ${ctx.permission}` +
          (ctx.policyDoc ? `; ${ctx.policyDoc}` : '') +
          (detail ? ` (${ctx.service}: ${detail})` : ''),
        name,
      );
    case 'throttled': {
      const attempts = shapeOf(err).$metadata?.attempts;
      return new AwsError(
        problem,
        `${ctx.service} kept throttling ${ctx.action} on ${ctx.target}${attempts ? ` after ${attempts} attempts` : ''} (${detail ?? name}); ` +
          'retry later or ask for a higher API quota',
        name,
      );
    }
    case 'quota':
      return new AwsError(problem, `${ctx.service} resource limit reached on ${ctx.action} (${ctx.target}): ${detail ?? name}; free some or ask for a higher quota`, name);
    case 'unreachable': {
      const code = networkErrorCode(err) ?? name;
      return new AwsError(
        problem,
        `cannot reach the ${ctx.service} endpoint for ${ctx.scope} (${code}): check ` +
          `${ctx.endpointSettings ? `${ctx.endpointSettings} and ` : 'AWS_REGION and '}the network`,
        code,
      );
    }
    case 'not_found':
      return ctx.notFound === undefined ? undefined : new AwsError(problem, ctx.notFound, name);
  }
}
