# pricesense inference API.
#
# Build stage: full dev install, then one esbuild bundle (api/build-bundle.ts) holding
# every JavaScript dependency, plus Swagger UI's static assets next to it.
# Runtime stage: node:20-slim with only that directory: no node_modules, no dev
# dependencies, no Pulumi, no npm at runtime. Runs as the unprivileged `node` user and
# writes nothing to disk (logs go to stdout), so a read-only root filesystem works.
#
#   docker build -t pricesense-api .
#   docker run --read-only -p 8080:8080 -v $PWD/.pricesense/registry:/registry:ro pricesense-api

FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` build (tsc of the whole repo) is not needed for the bundle.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY etl ./etl
COPY model ./model
COPY api ./api
RUN node -r ts-node/register/transpile-only api/build-bundle.ts /out

FROM node:20-slim AS runtime
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
CMD ["node", "server.js"]
