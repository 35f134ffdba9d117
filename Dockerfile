# syntax=docker/dockerfile:1
# One image for both sides: the controller (default command) and the agent
#   docker build -t flotilla:0.1.0 .
#   docker run flotilla:0.1.0                      # node controller/main.js
#   docker run flotilla:0.1.0 agent/main.js ...    # the agent
# The charts run `node --enable-source-maps --max-semi-space-size=1 /app/<controller|agent>/main.js` with their flags.
#
# The sources are compiled to plain JavaScript (tsconfig: outDir dist) in a build stage; the runtime
# stage holds only that output and the production dependencies, so nothing compiles TypeScript at start
# and no dev tool ships. It could not be built where it was written (no Docker engine there); the build
# stage's commands (npm ci, tsc) and the compiled entry points were run by hand instead.

FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY lib lib
COPY controller controller
COPY agent agent
COPY dashboard dashboard
# Only lib, controller, agent and dashboard are copied: tsc compiles what tsconfig includes and exists. The CLI
# (and the local fleet in stack/ it drives) is a developer tool and stays out of the image.
RUN npx tsc -p tsconfig.json && find dist -name '*.test.js*' -delete

FROM node:20-slim
# git: the controller fetches repositories with the git command line; openssh-client for ssh URLs;
# ca-certificates for https ones.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist/lib ./lib
COPY --from=build /src/dist/controller ./controller
COPY --from=build /src/dist/agent ./agent
# The optional in-cluster dashboard (charts: dashboard.enabled): its compiled server and its page as written.
COPY --from=build /src/dist/dashboard ./dashboard
COPY dashboard/static ./dashboard/static
# The image's `node` user (uid 1000), never root; the charts also run with a read-only root file
# system and give HOME (/tmp) and the work and cache folders their own volumes.
USER 1000:1000
ENV HOME=/tmp
EXPOSE 8080 8081
# --max-semi-space-size=1 keeps V8's young generation at 1 MiB semi-spaces (it grows to 16 MiB at start-up
# otherwise): about 15 MiB less resident memory per process (bench/README.md, Memory).
ENTRYPOINT ["node", "--enable-source-maps", "--max-semi-space-size=1"]
CMD ["controller/main.js"]
