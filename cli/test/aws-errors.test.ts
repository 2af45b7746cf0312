/**
 * AWS errors are translated in one place (core/aws-errors.ts): the same SDK-shaped error
 * through the S3 lake, the SageMaker registry and `pipeline start` is the same kind and
 * exit code. SageMaker requests are answered by aws-sdk-client-mock; the S3 client fails
 * in a middleware before anything is sent, as the SDK does for a credential failure.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { DescribeModelPackageGroupCommand, ListPipelineExecutionsCommand, SageMakerClient, StartPipelineExecutionCommand } from '@aws-sdk/client-sagemaker';
import { mockClient } from 'aws-sdk-client-mock';
import { AwsError, translateAwsError } from '../../core/aws-errors';
import { exitCodeOf, type ErrorKind } from '../../core/error-kinds';
import { UserError } from '../../core/errors';
import { S3Lake } from '../../etl/lake/s3';
import { SageMakerRegistry } from '../../model/registry/sagemaker';
import { exitCodeFor } from '../index';
import { runPipeline } from '../pipeline-run';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const CREDENTIALS = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: SECRET };

/** What the SDK throws: a service exception carries name, message and $metadata; a socket error its code. */
function sdkError(name: string, message: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(message), { name, $fault: 'client', $metadata: status === undefined ? { attempts: 1 } : { httpStatusCode: status, attempts: 3 }, ...extra });
}

const CASES: Array<[string, () => Error, ErrorKind]> = [
  ['no credentials (CredentialsProviderError)', () => sdkError('CredentialsProviderError', 'Could not load credentials from any providers'), 'denied'],
  ['S3-style bad credentials (InvalidAccessKeyId)', () => sdkError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', 403), 'denied'],
  ['JSON-service bad credentials (UnrecognizedClientException)', () => sdkError('UnrecognizedClientException', 'The security token included in the request is invalid.', 400), 'denied'],
  ['expired session token (ExpiredTokenException)', () => sdkError('ExpiredTokenException', 'The security token included in the request is expired', 400), 'denied'],
  ['access denied (AccessDenied, 403)', () => sdkError('AccessDenied', 'Access Denied', 403), 'denied'],
  ['access denied (AccessDeniedException)', () => sdkError('AccessDeniedException', 'User: arn:aws:sts::123456789012:assumed-role/ci/x is not authorized to perform this action', 400), 'denied'],
  ['throttling (ThrottlingException)', () => sdkError('ThrottlingException', 'Rate exceeded', 400), 'throttled'],
  ['throttling (SlowDown, 503)', () => sdkError('SlowDown', 'Please reduce your request rate.', 503), 'throttled'],
  ['unreachable endpoint (ECONNREFUSED)', () => sdkError('Error', 'connect ECONNREFUSED 127.0.0.1:9', undefined, { code: 'ECONNREFUSED' }), 'unavailable'],
  ['unresolvable endpoint (ENOTFOUND)', () => sdkError('Error', 'getaddrinfo ENOTFOUND sagemaker.nowhere.example', undefined, { code: 'ENOTFOUND' }), 'unavailable'],
  ['missing region', () => sdkError('Error', 'Region is missing'), 'validation'],
  ['not found (ResourceNotFound)', () => sdkError('ResourceNotFound', 'Resource does not exist', 400), 'not_found'],
];

/** An S3 lake whose every request fails with err before it is signed or sent. */
function failingLake(err: () => Error): S3Lake {
  const client = new S3Client({ region: 'us-east-1', credentials: CREDENTIALS });
  client.middlewareStack.add(
    () => async () => {
      throw err();
    },
    { step: 'initialize', name: 'injectFailure' },
  );
  return new S3Lake('s3://lake-bucket/pricesense', { client });
}

async function failure(run: () => Promise<unknown>): Promise<Error> {
  const err = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error(`expected a failure, got ${String(err)}`);
  return err;
}

describe.each(CASES)('%s', (_label, err, kind) => {
  const outcomes = async (): Promise<Record<string, Error>> => {
    const sm = new SageMakerClient({ region: 'us-east-1', credentials: CREDENTIALS });
    const smMock = mockClient(sm);
    smMock.on(DescribeModelPackageGroupCommand).callsFake(() => Promise.reject(err()));
    smMock.on(ListPipelineExecutionsCommand).resolves({ PipelineExecutionSummaries: [] });
    smMock.on(StartPipelineExecutionCommand).callsFake(() => Promise.reject(err()));
    try {
      const lake = failingLake(err);
      const registry = new SageMakerRegistry('pricesense-test', { lake, client: sm, image: 'img' });
      return {
        's3 lake read': await failure(() => lake.read('gold/train.parquet')),
        'sagemaker registry show': await failure(() => registry.show(1)),
        'pipeline start': await failure(() => runPipeline({ name: 'pricesense-dev', client: sm })),
      };
    } finally {
      smMock.restore();
      sm.destroy();
    }
  };

  it(`is ${kind} (exit ${exitCodeOf(kind)}) through the S3 lake, the SageMaker registry and pipeline start alike`, async () => {
    const got = await outcomes();
    for (const [where, e] of Object.entries(got)) {
      expect({ where, isUserError: e instanceof UserError, kind: (e as UserError).kind, exit: exitCodeFor(e) }).toEqual({ where, isUserError: true, kind, exit: exitCodeOf(kind) });
      expect(e.message).not.toContain(SECRET);
    }
  });
});

describe('the message skeleton, with each backend\'s context', () => {
  const ctx = { service: 'S3', scope: 's3://b/lake', action: 'write', target: 's3://b/lake/gold/x', permission: 's3:PutObject on arn:aws:s3:::b/lake/*' };

  it('names what to set for missing credentials, the same words everywhere', async () => {
    const lake = await failure(() => failingLake(CASES[0][1]).read('gold/x'));
    expect(lake.message).toBe('no AWS credentials for s3://lake-bucket/pricesense: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role (instance profile, IRSA)');
    const sm = new SageMakerClient({ region: 'us-east-1', credentials: CREDENTIALS });
    const smMock = mockClient(sm);
    smMock.on(DescribeModelPackageGroupCommand).rejects(CASES[0][1]());
    try {
      const registry = new SageMakerRegistry('pricesense-test', { lake: failingLake(CASES[0][1]), client: sm, image: 'img' });
      expect((await failure(() => registry.show(1))).message).toBe(lake.message.replace('s3://lake-bucket/pricesense', 'sagemaker://pricesense-test'));
    } finally {
      smMock.restore();
    }
  });

  it('names the permission needed on a denial, and AWS\'s own text only when it says more', () => {
    expect(translateAwsError(sdkError('AccessDenied', 'Access Denied', 403), ctx)?.message).toBe(
      'access denied to s3://b/lake/gold/x (write): the credentials in use need s3:PutObject on arn:aws:s3:::b/lake/*',
    );
    expect(translateAwsError(sdkError('AccessDeniedException', 'User: arn:aws:sts::1:assumed-role/ci/x is not authorized', 400), { ...ctx, service: 'SageMaker', policyDoc: 'docs/registry.md lists the IAM policy' })?.message).toBe(
      'access denied to s3://b/lake/gold/x (write): the credentials in use need s3:PutObject on arn:aws:s3:::b/lake/*; docs/registry.md lists the IAM policy (SageMaker: User: arn:aws:sts::1:assumed-role/ci/x is not authorized)',
    );
  });

  it('gives the network code of an unreachable endpoint and the settings that choose it', () => {
    const e = translateAwsError(sdkError('Error', 'connect ECONNREFUSED 127.0.0.1:9', undefined, { code: 'ECONNREFUSED' }), { ...ctx, endpointSettings: 'PRICESENSE_S3_ENDPOINT' });
    expect(e).toBeInstanceOf(AwsError);
    expect(e?.message).toBe('cannot reach the S3 endpoint for s3://b/lake (ECONNREFUSED): check PRICESENSE_S3_ENDPOINT and the network');
  });

  it('leaves errors it does not know, and a not-found without a message, to the caller', () => {
    expect(translateAwsError(sdkError('InternalFailure', 'We encountered an internal error', 500), ctx)).toBeUndefined();
    expect(translateAwsError(sdkError('ResourceNotFound', 'nope', 400), ctx)).toBeUndefined();
    expect(translateAwsError(sdkError('ResourceNotFound', 'nope', 400), { ...ctx, notFound: 'no such thing' })?.kind).toBe('not_found');
  });
});
