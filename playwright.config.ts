import { defineConfig } from '@playwright/test';
// @ts-expect-error plain JS helper shared with the scripts
import { findBrowser, baseBrowserArgs } from './scripts/find-browser.mjs';

const PORT = 5199;
const executablePath: string | undefined = findBrowser() ?? undefined;

// The demo is opened twice: once in a browser with WebGPU (SwiftShader where there is no GPU) and once in one
// started without the WebGPU flag, which must show the no-WebGPU message.
export default defineConfig({
  testDir: 'tests/e2e',
  timeout: 120_000,
  reporter: [['list']],
  use: { baseURL: `http://localhost:${PORT}` },
  webServer: {
    command: `npx vite --mode demo --config tests/e2e/vite.config.ts --port ${PORT} --strictPort`,
    url: `http://localhost:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 120_000,
  },
  projects: [
    {
      name: 'webgpu',
      use: { launchOptions: { executablePath, args: [...baseBrowserArgs(), '--enable-unsafe-webgpu'] } },
    },
    {
      name: 'no-webgpu',
      use: { launchOptions: { executablePath, args: [...baseBrowserArgs()] } },
    },
  ],
});
