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

  interface KoaContext {
    method: string;
    path: string;
    query: Record<string, string | string[] | undefined>;
    headers: Record<string, string | string[] | undefined>;
  }

  class S3rver {
    constructor(options?: S3rverOptions);
    /** Koa's middleware list; composed when the server starts listening. */
    middleware: ((ctx: KoaContext, next: () => Promise<void>) => Promise<void>)[];
    store: {
      getMetadata(bucket: string, key: string): Promise<Record<string, string>>;
    };
    run(): Promise<AddressInfo>;
    close(): Promise<void>;
  }

  export = S3rver;
}

declare module 's3rver/lib/models/error' {
  class S3Error extends Error {
    constructor(code: string, message: string, detail?: Record<string, string>);
  }
  export = S3Error;
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
