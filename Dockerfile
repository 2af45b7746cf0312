# pricesense inference API.
#
# Build stage: full dev install, then one esbuild bundle (api/build-bundle.ts) holding
# every JavaScript dependency, plus Swagger UI's static assets next to it.
# Runtime stage: node:24-slim with only that directory: no node_modules, no dev
# dependencies, no Pulumi, no npm at runtime. Runs as the unprivileged `node` user and
# writes nothing to disk (logs go to stdout), so a read-only root filesystem works.
#
#   docker build -t pricesense-api .
#   docker run --read-only -p 8080:8080 -v $PWD/.pricesense/registry:/registry:ro pricesense-api

FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` build (tsc of the whole repo) is not needed for the bundle.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY contracts ./contracts
COPY etl ./etl
COPY model ./model
COPY api ./api
RUN node -r ts-node/register/transpile-only api/build-bundle.ts /out

# ---------------------------------------------------------------------------------------
# SageMaker "jobs" image (docs/sagemaker.md): the CLI compiled to dist/ plus production
# node_modules (DuckDB's native binding included), entrypoint `pricesense sagemaker`, so
# SageMaker's `docker run <image> train` runs `pricesense sagemaker train`, and the
# pipeline's processing steps pass `etl` / `evaluate`. Not the default target:
#
#   docker build --target jobs -t pricesense-jobs --build-arg CODE_VERSION=$(git rev-parse HEAD) .
#   docker run --rm -v $PWD/sm:/opt/ml pricesense-jobs train

FROM node:24-slim AS jobs-build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY contracts ./contracts
COPY etl ./etl
COPY model ./model
COPY api ./api
COPY cli ./cli
RUN npx tsc -p tsconfig.build.json

FROM node:24-slim AS jobs-deps
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: no `prepare` build, and no dependency install scripts downloading
# plugins at build time. DuckDB's binding is a prebuilt optional dependency, no script.
RUN npm ci --no-audit --no-fund --omit=dev --ignore-scripts && npm cache clean --force

FROM node:24-slim AS jobs
ARG CODE_VERSION
ENV NODE_ENV=production \
    PRICESENSE_CODE_VERSION=${CODE_VERSION}
WORKDIR /app
COPY --chown=root:root package.json ./
COPY --chown=root:root bin ./bin
COPY --from=jobs-deps --chown=root:root /src/node_modules ./node_modules
COPY --from=jobs-build --chown=root:root /src/dist ./dist
# Fails the build if the native binding or the CLI cannot load.
RUN node -e "require('@duckdb/node-api')" && node bin/pricesense.js sagemaker --help > /dev/null
# Code owned by root, run as `node`. SageMaker mounts /opt/ml/* at run time; the jobs
# only write under /opt/ml (and os.tmpdir()), see docs/sagemaker.md on permissions.
USER node
ENTRYPOINT ["node", "/app/bin/pricesense.js", "sagemaker"]

# ---------------------------------------------------------------------------------------
# The API runtime image (the default target: keep it last).
FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    PRICESENSE_REGISTRY=/registry
WORKDIR /app
COPY --from=build --chown=root:root /out/ /app/
# Owned by root, run as `node`: the process cannot modify its own code.
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.PORT||8080,path:'/health',timeout:2000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# Model loads parse in a worker thread whose garbage dies with it: no forced gc() on the serving thread.
CMD ["node", "--max-semi-space-size=8", "server.js"]
