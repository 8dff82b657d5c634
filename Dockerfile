# One image for the operator and the injected sidecar: `ai-envelope operator ...` and
# `ai-envelope sidecar ...` are the same entrypoint with different arguments.
# Build: docker build -t ai-envelope:0.1.0 .

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts stay off: the node@24 devDependency would fetch a second Node, and nothing here needs one.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json cli.ts ./
COPY crds ./crds
COPY sidecar ./sidecar
COPY operator ./operator
COPY simulator ./simulator
COPY demo ./demo
RUN node node_modules/typescript/bin/tsc -p tsconfig.json \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
# Nothing in the running image installs packages: npm, npx and corepack go.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# A numeric user, so runAsNonRoot can be checked without reading /etc/passwd. The root filesystem
# can be read-only: the sidecar writes to --state-dir and /tmp, both volumes in the injected pod.
USER 10001:10001
EXPOSE 4141 4142 8080 9443
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["help"]
