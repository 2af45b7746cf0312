/**
 * Just enough of SageMaker's model package API, behind aws-sdk-client-mock, for the
 * registry backend's tests (registry-sagemaker, registry-conformance), the console's
 * (console/test/sagemaker.test.ts) and the API's (api/test/hostile-artifact.test.ts):
 * packages, approval status, listing with paging.
 */
import {
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  DescribeModelPackageCommand,
  DescribeModelPackageGroupCommand,
  ListModelPackagesCommand,
  SageMakerClient,
  SageMakerServiceException,
  UpdateModelPackageCommand,
  type CreateModelPackageCommandInput,
  type DescribeModelPackageOutput,
  type ModelApprovalStatus,
} from '@aws-sdk/client-sagemaker';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';

export const GROUP = 'pricesense-test';
export const ACCOUNT_ARN = 'arn:aws:sagemaker:us-east-1:123456789012';
export const IMAGE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/pricesense-api:1.0.0';

export function awsError(name: string, message: string, status = 400): SageMakerServiceException {
  return new SageMakerServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: status } });
}

/** A SageMaker client (test credentials, no network) whose model package requests a FakeSageMaker answers. */
export function fakeSageMakerClient(): { client: SageMakerClient; sm: AwsClientStub<SageMakerClient>; fake: FakeSageMaker; close: () => void } {
  const client = new SageMakerClient({ region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  const sm = mockClient(client);
  const fake = new FakeSageMaker();
  fake.install(sm);
  return {
    client,
    sm,
    fake,
    close: () => {
      sm.restore();
      client.destroy();
    },
  };
}

/** Just enough of a model package group to behave like SageMaker for these requests. */
export class FakeSageMaker {
  groupArn: string | undefined;
  /** The next DescribeModelPackageGroup says "does not exist" although it does (it was created concurrently). */
  hideGroupOnce = false;
  /**
   * Apply the ModelApprovalStatus filter after cutting the page, as a service may: a page
   * can then be empty and still carry a NextToken.
   */
  filterAfterPaging = false;
  /** DescribeModelPackage calls wait until this many are waiting, then all proceed (0 = off). */
  describeBarrier = 0;
  private waiting: (() => void)[] = [];
  readonly packages: DescribeModelPackageOutput[] = [];
  // Real time onwards, so SageMaker's timestamps and the audit entries' are on one clock.
  private clock = Date.now();

  /** A package as the SageMaker pipeline's RegisterModel step makes it: no pricesense audit trail. */
  addPipelinePackage(input: { modelDataUrl: string; artifactSha256: string; status: ModelApprovalStatus; forestSha256?: string }): number {
    const version = this.packages.length + 1;
    this.packages.push({
      ModelPackageName: GROUP,
      ModelPackageGroupName: GROUP,
      ModelPackageVersion: version,
      ModelPackageArn: `${ACCOUNT_ARN}:model-package/${GROUP}/${version}`,
      CreationTime: this.tick(),
      InferenceSpecification: { Containers: [{ Image: IMAGE, ModelDataUrl: input.modelDataUrl }], SupportedContentTypes: ['application/json'], SupportedResponseMIMETypes: ['application/json'] },
      ModelPackageStatus: 'Completed',
      ModelPackageStatusDetails: { ValidationStatuses: [] },
      ModelApprovalStatus: input.status,
      CreatedBy: { IamIdentity: { Arn: 'arn:aws:sts::123456789012:assumed-role/sagemaker/pipeline' } },
      CustomerMetadataProperties: { 'pricesense:artifactSha256': input.artifactSha256, 'pricesense:forestSha256': input.forestSha256 ?? 'unknown', 'pricesense:formatVersion': '1', 'pricesense:registeredBy': 'sagemaker-pipeline/test' },
    });
    return version;
  }

  install(sm: AwsClientStub<SageMakerClient>): void {
    sm.on(DescribeModelPackageGroupCommand).callsFake(() => {
      const hidden = this.hideGroupOnce;
      this.hideGroupOnce = false;
      if (!this.groupArn || hidden) throw awsError('ValidationException', `ModelPackageGroup ${GROUP} does not exist.`);
      return { ModelPackageGroupName: GROUP, ModelPackageGroupArn: this.groupArn };
    });
    sm.on(CreateModelPackageGroupCommand).callsFake(() => {
      if (this.groupArn) throw awsError('ValidationException', `Model Package Group already exists: ${this.groupArn}`);
      this.groupArn = `${ACCOUNT_ARN}:model-package-group/${GROUP}`;
      return { ModelPackageGroupArn: this.groupArn };
    });
    sm.on(CreateModelPackageCommand).callsFake((input: CreateModelPackageCommandInput) => {
      const version = this.packages.length + 1;
      const arn = `${ACCOUNT_ARN}:model-package/${GROUP}/${version}`;
      this.packages.push({
        ModelPackageName: GROUP,
        ModelPackageGroupName: input.ModelPackageGroupName,
        ModelPackageVersion: version,
        ModelPackageArn: arn,
        ModelPackageDescription: input.ModelPackageDescription,
        CreationTime: this.tick(),
        InferenceSpecification: input.InferenceSpecification,
        ModelPackageStatus: 'Completed',
        ModelPackageStatusDetails: { ValidationStatuses: [] },
        ModelApprovalStatus: input.ModelApprovalStatus,
        CreatedBy: { IamIdentity: { Arn: 'arn:aws:sts::123456789012:assumed-role/ml/trainer' } },
        ModelMetrics: input.ModelMetrics,
        CustomerMetadataProperties: input.CustomerMetadataProperties,
      });
      return { ModelPackageArn: arn };
    });
    sm.on(DescribeModelPackageCommand).callsFake(async ({ ModelPackageName }: { ModelPackageName: string }) => {
      if (this.describeBarrier > 0) {
        await new Promise<void>((resolve) => {
          this.waiting.push(resolve);
          if (this.waiting.length >= this.describeBarrier) {
            this.describeBarrier = 0;
            for (const go of this.waiting.splice(0)) go();
          }
        });
      }
      const p = this.packages.find((x) => x.ModelPackageArn === ModelPackageName);
      if (!p) throw awsError('ValidationException', `Model package ${ModelPackageName} does not exist.`);
      return structuredClone(p);
    });
    sm.on(UpdateModelPackageCommand).callsFake(
      ({ ModelPackageArn, ModelApprovalStatus, ApprovalDescription }: { ModelPackageArn: string; ModelApprovalStatus: ModelApprovalStatus; ApprovalDescription?: string }) => {
        const p = this.packages.find((x) => x.ModelPackageArn === ModelPackageArn)!;
        Object.assign(p, {
          ModelApprovalStatus,
          ApprovalDescription,
          LastModifiedTime: this.tick(),
          LastModifiedBy: { IamIdentity: { Arn: 'arn:aws:sts::123456789012:assumed-role/ml/approver' } },
        });
        return { ModelPackageArn };
      },
    );
    sm.on(ListModelPackagesCommand).callsFake(
      (input: { ModelApprovalStatus?: string; SortOrder?: string; MaxResults?: number; NextToken?: string }) => {
        const matches = (p: DescribeModelPackageOutput) => !input.ModelApprovalStatus || p.ModelApprovalStatus === input.ModelApprovalStatus;
        let list = this.filterAfterPaging ? [...this.packages] : this.packages.filter(matches);
        list = [...list].sort((a, b) => a.CreationTime!.getTime() - b.CreationTime!.getTime());
        if (input.SortOrder === 'Descending') list.reverse();
        const start = input.NextToken ? Number(input.NextToken) : 0;
        const size = input.MaxResults ?? 10;
        const page = list.slice(start, start + size).filter(matches);
        return {
          ModelPackageSummaryList: page.map((p) => ({
            ModelPackageGroupName: GROUP,
            ModelPackageVersion: p.ModelPackageVersion,
            ModelPackageArn: p.ModelPackageArn,
            CreationTime: p.CreationTime,
            ModelPackageStatus: 'Completed',
            ModelApprovalStatus: p.ModelApprovalStatus,
          })),
          NextToken: start + size < list.length ? String(start + size) : undefined,
        };
      },
    );
  }

  private tick(): Date {
    this.clock += 60_000;
    return new Date(this.clock);
  }
}

