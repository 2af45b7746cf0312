/**
 * The lake bucket. One bucket, zones as prefixes (the same layout the ETL writes to a
 * local directory): raw/, silver/, gold/, artifacts/, logs/, tmp/. Private, encrypted,
 * versioned, TLS-only; lifecycle rules keep the bill flat as data ages.
 */
import * as pulumi from '@pulumi/pulumi';
import * as aws from '@pulumi/aws';
import type { Tier } from './config';
import type { LakeZone } from '../contracts/lake-zones';
import { DATA_RETENTION } from './teardown';

export interface DataLakeArgs {
  readonly tier: Tier;
  readonly stack: string;
  readonly accountId: pulumi.Input<string>;
  readonly tmpExpireDays: number;
  readonly logsInfrequentAccessDays: number;
  readonly logsExpireDays: number;
  readonly rawIntelligentTieringDays: number;
  readonly noncurrentVersionExpireDays: number;
}

/** The stable name of a retained lake bucket: unique per account and stack, the same on every recreation. */
export function lakeBucketName(stack: string, accountId: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.interpolate`pricesense-lake-${stack}-${accountId}`;
}

export class DataLake extends pulumi.ComponentResource {
  readonly bucketName: pulumi.Output<string>;
  readonly bucketArn: pulumi.Output<string>;

  constructor(name: string, args: DataLakeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('pricesense:infra:DataLake', name, {}, opts);
    // The bucket and everything that guards it share one retention (teardown.ts), so a
    // retained or protected bucket is never left without its public access block or policy.
    const retention = DATA_RETENTION[args.tier];
    const keep: pulumi.CustomResourceOptions = { parent: this, protect: retention.protect, retainOnDelete: retention.retainOnDelete };

    const bucket = new aws.s3.Bucket(`${name}`, {
      // A retained bucket outlives its stack: a stable name lets a recreated stack import it
      // (docs/infra.md, "Teardown, stack by stack"). Elsewhere a prefix avoids name clashes.
      ...(retention.retainOnDelete ? { bucket: lakeBucketName(args.stack, args.accountId) } : { bucketPrefix: `pricesense-lake-${args.stack}-` }),
      forceDestroy: retention.forceDestroy,
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
            // The demo load balancer's access logs (app project, with TLS), under logs/lb/ only.
            Sid: 'LoadBalancerAccessLogs',
            Effect: 'Allow',
            Principal: { Service: 'delivery.logs.amazonaws.com' },
            Action: 's3:PutObject',
            Resource: pulumi.interpolate`${bucket.arn}/logs/lb/*`,
            Condition: { StringEquals: { 'aws:SourceAccount': args.accountId, 's3:x-amz-acl': 'bucket-owner-full-control' } },
          },
          {
            Sid: 'LoadBalancerAccessLogsAcl',
            Effect: 'Allow',
            Principal: { Service: 'delivery.logs.amazonaws.com' },
            Action: 's3:GetBucketAcl',
            Resource: bucket.arn,
            Condition: { StringEquals: { 'aws:SourceAccount': args.accountId } },
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
          // The incremental ETL reads a raw file once on arrival and old files only for baskets
          // spanning files, at unpredictable times (backfills, rebuilds): Intelligent-Tiering
          // moves idle files down to ~$0.004/GB without Glacier IR's $0.03/GB retrieval fee
          // and 90-day minimum, and moves a re-read file back up for free.
          id: 'raw-intelligent-tiering',
          status: 'Enabled',
          filter: { prefix: 'raw/' },
          transitions: [{ days: args.rawIntelligentTieringDays, storageClass: 'INTELLIGENT_TIERING' }],
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
  objectsArn(prefix: LakeZone): pulumi.Output<string> {
    return pulumi.interpolate`${this.bucketArn}/${prefix}/*`;
  }
}
