# MindBot: the sidecar (and, with issue 4, the agent worker) in one slim image.
# Build: docker build -t mindbot .    Run: docker run --env-file .env -p 8001:8001 mindbot

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (tsx is one: the TypeScript sources run as they are).
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    MINDBOT_SKIP_INSTALL=1 \
    LOG_FORMAT=json \
    HOST=0.0.0.0 \
    PORT=8001
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json launch.sh ./
COPY src ./src
COPY migrations ./migrations
RUN mkdir -p data logs run && chown -R node:node data logs run
USER node
EXPOSE 8001
STOPSIGNAL SIGTERM
# --foreground: launch.sh execs the sidecar, or with LiveKit configured runs sidecar and worker and passes
# Docker's SIGTERM on to both, so the worker settles its calls before the container stops.
CMD ["./launch.sh", "start", "--foreground"]
