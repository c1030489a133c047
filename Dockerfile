# syntax=docker/dockerfile:1
# Multi-stage build: TypeScript is compiled in `build`; the runtime image holds
# only production dependencies, the compiled code and the files read at run time.
# test/dockerfile.test.ts replays the runtime stage's COPY lines outside Docker.

FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:22-slim AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no production dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# Owned by root and read-only to the app user. Besides dist/, the server reads at
# start-up: schema/, openapi.yaml and the dashboard's static files (from src/, as tsc copies no assets).
COPY --from=build /app/dist ./dist
COPY schema ./schema
COPY openapi.yaml ./
COPY src/dashboard ./src/dashboard
USER node
EXPOSE 3000
# slim images have no curl; node's fetch follows a PORT override.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1)).catch(() => process.exit(1))"]
# The Node flags are the ones `npm start` passes (src/process-tuning.ts: NODE_FLAGS).
CMD ["node", "--max-semi-space-size=8", "dist/server.js"]
