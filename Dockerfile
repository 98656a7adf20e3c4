# MindBot: the sidecar (with the web app) and the agent worker in one slim image.
# Build: docker build -t mindbot .    Run: docker run --env-file .env -p 8001:8001 mindbot

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only (tsx is one: the TypeScript sources run as they are).
RUN npm ci --omit=dev --no-audit --no-fund

# The web app: built with the dev dependencies (Vite, React), only its static files go on.
FROM node:20-bookworm-slim AS web
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY vite.config.ts tsconfig.json ./
COPY src ./src
RUN npx vite build

FROM node:20-bookworm-slim
# DEV_SIGN_IN stays off: the sidecar refuses it in production anyway.
ENV NODE_ENV=production \
    DEV_SIGN_IN=false \
    MINDBOT_SKIP_INSTALL=1 \
    LOG_FORMAT=json \
    HOST=0.0.0.0 \
    PORT=8001
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json launch.sh ./
COPY src ./src
COPY migrations ./migrations
COPY --from=web /app/dist/web ./dist/web
RUN mkdir -p data logs run && chown -R node:node data logs run
USER node
EXPOSE 8001
STOPSIGNAL SIGTERM
# --foreground: launch.sh execs the sidecar, or with LiveKit configured runs sidecar and worker and passes
# Docker's SIGTERM on to both, so the worker settles its calls before the container stops.
CMD ["./launch.sh", "start", "--foreground"]
