import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
// @ts-expect-error plain JS helper shared with the scripts
import { findBrowser, baseBrowserArgs } from './scripts/find-browser.mjs';
// @ts-expect-error plain JS helper shared with the scripts
import { nodeGpuEnv } from './scripts/gpu-env.mjs';

// Dawn reads the Vulkan variables when its process starts: set them here, before Vitest forks its workers.
Object.assign(process.env, nodeGpuEnv());

const GPU_TIMEOUT = 120_000; // SwiftShader runs shaders on the CPU at ~1 GFLOP/s

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['tests/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'gpu',
          include: ['tests/gpu/**/*.test.ts'],
          exclude: ['tests/gpu/**/*.node.test.ts'],
          globalSetup: ['tests/gpu/fault-server.setup.ts'],
          testTimeout: GPU_TIMEOUT,
          hookTimeout: GPU_TIMEOUT,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            instances: [{ browser: 'chromium' }],
            provider: playwright({
              launchOptions: {
                executablePath: findBrowser() ?? undefined,
                args: [...baseBrowserArgs(), '--enable-unsafe-webgpu'],
              },
            }),
          },
        },
      },
      {
        test: {
          name: 'gpu-node',
          include: ['tests/gpu/**/*.test.ts'],
          exclude: ['tests/gpu/**/*.browser.test.ts'],
          globalSetup: ['tests/gpu/fault-server.setup.ts'],
          environment: 'node',
          pool: 'forks',
          setupFiles: ['tests/gpu/setup-node.ts'],
          testTimeout: GPU_TIMEOUT,
          hookTimeout: GPU_TIMEOUT,
        },
      },
    ],
  },
});
