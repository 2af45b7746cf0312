// Minimal typings for s3rver 3.x (it ships none): only what etl/testing/s3-server.ts uses.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net';

  interface S3rverOptions {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    vhostBuckets?: boolean;
    allowMismatchedSignatures?: boolean;
    configureBuckets?: { name: string; configs?: Array<string | Buffer> }[];
  }

  class S3rver {
    constructor(options?: S3rverOptions);
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }

  export = S3rver;
}

declare module 's3rver/lib/controllers/bucket' {
  interface KoaLikeContext {
    query: Record<string, string | string[] | undefined>;
    params: Record<string, string>;
    body: unknown;
  }
  // Mutable on purpose: s3rver's router looks getBucket up on this object per request.
  const bucketController: { getBucket: (ctx: KoaLikeContext) => Promise<void> };
  export = bucketController;
}
