// Builds the web app (src/web) into dist/web, which the sidecar serves at /, /admin and /assets/.
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('./src/web'),
  plugins: [react()],
  // Nothing from the server's environment reaches the bundle: the app asks the sidecar (/app/config).
  envPrefix: 'MINDBOT_PUBLIC_',
  build: {
    outDir: here('./dist/web'),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // `vite` (dev server with hot reload) next to `./launch.sh dev`: the API stays on the sidecar.
    proxy: Object.fromEntries(['/time', '/token', '/payments', '/api', '/admin/', '/auth', '/app', '/health', '/user']
      .map((path) => [path, { target: process.env.MINDBOT_SIDECAR_URL ?? 'http://127.0.0.1:8001' }])),
  },
});
