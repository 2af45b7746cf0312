/**
 * The lake bucket. One bucket, zones as prefixes (the same layout the ETL writes to a
 * local directory): raw/, silver/, gold/, artifacts/, logs/, tmp/. Private, encrypted,
 * versioned, TLS-only; lifecycle rules keep the bill flat as data ages.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { Tier } from './config';

/** Zones of the lake (mirrors etl/lake/types.ts LAKE_ZONES; infra does not import app code). */
export const LAKE_PREFIXES = ['raw', 'silver', 'gold', 'artifacts', 'logs', 'tmp'] as const;
export type LakePrefix = (typeof LAKE_PREFIXES)[number];

export interface DataLakeArgs {
  readonly tier: Tier;
  readonly tmpExpireDays: number;
  readonly logsInfrequentAccessDays: number;
  readonly logsExpireDays: number;
  readonly rawGlacierIrDays: number;
  readonly noncurrentVersionExpireDays: number;
}

export class DataLake extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;

  constructor(name: string, args: DataLakeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:DataLake', name, {}, opts);
    // prod keeps its data when the stack is destroyed (the bucket and everything that
    // guards it, so a retained bucket is never left unprotected); dev is disposable.
    const keep: pulumi.CustomResourceOptions = { parent: this, retainOnDelete: args.tier === 'prod' };

    const bucket = new aws.s3.Bucket(`${name}`, {
      bucketPrefix: `pricesense-lake-${args.tier}-`,
      forceDestroy: args.tier === 'dev',
    }, keep);
    this.bucketName = bucket.bucket;
    this.bucketArn = bucket.arn;

    new aws.s3.BucketOwnershipControls(`${name}-ownership`, {
      bucket: bucket.id,
      rule: { objectOwnership: 'BucketOwnerEnforced' }, // ACLs off: access is IAM only
    }, keep);
    new aws.s3.BucketPublicAccessBlock(`${name}-public-access`, {
      bucket: bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    }, keep);
    new aws.s3.BucketServerSideEncryptionConfiguration(`${name}-sse`, {
      bucket: bucket.id,
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' }, bucketKeyEnabled: true }],
    }, keep);
    const versioning = new aws.s3.BucketVersioning(`${name}-versioning`, {
      bucket: bucket.id,
      versioningConfiguration: { status: 'Enabled' },
    }, keep);

    new aws.s3.BucketPolicy(`${name}-tls-only`, {
      bucket: bucket.id,
      policy: pulumi.jsonStringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'DenyInsecureTransport',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
          {
            Sid: 'DenyOldTls',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
            Condition: { NumericLessThan: { 's3:TlsVersion': '1.2' } },
          },
        ],
      }),
    }, keep);

    new aws.s3.BucketLifecycleConfiguration(`${name}-lifecycle`, {
      bucket: bucket.id,
      rules: [
        { id: 'tmp-expire', status: 'Enabled', filter: { prefix: 'tmp/' }, expiration: { days: args.tmpExpireDays } },
        {
          id: 'logs-ia-then-expire',
          status: 'Enabled',
          filter: { prefix: 'logs/' },
          transitions: [{ days: args.logsInfrequentAccessDays, storageClass: 'STANDARD_IA' }],
          expiration: { days: args.logsExpireDays },
        },
        {
          id: 'raw-glacier-ir',
          status: 'Enabled',
          filter: { prefix: 'raw/' },
          transitions: [{ days: args.rawGlacierIrDays, storageClass: 'GLACIER_IR' }],
        },
        {
          // Versioning protects against overwrites; old versions must not pile up forever.
          id: 'noncurrent-expire',
          status: 'Enabled',
          filter: {},
          noncurrentVersionExpiration: { noncurrentDays: args.noncurrentVersionExpireDays },
          abortIncompleteMultipartUpload: { daysAfterInitiation: 2 },
        },
      ],
    }, { ...keep, dependsOn: [versioning] });

    this.registerOutputs({ bucketName: this.bucketName });
  }

  /** ARN pattern of the objects under one zone prefix. */
  objectsArn(prefix: LakePrefix): pulumi.Output<string> {
    return pulumi.interpolate`${this.bucketArn}/${prefix}/*`;
  }
}
