// Environment for WebGPU in Node through the `webgpu` package (Dawn over Vulkan). Without a GPU, Dawn runs on
// SwiftShader, the CPU Vulkan that Chromium ships; Dawn also needs a Vulkan loader (libvulkan.so.1), which
// Chromium ships as well when the system has none. Variables already set are kept, so a real GPU machine can
// point Vulkan at its own driver. Must be applied before the process that loads Dawn starts: the dynamic
// loader reads LD_LIBRARY_PATH only at process start.
import { existsSync, readdirSync } from 'node:fs';

const CHROMIUM_DIR = '/usr/lib/chromium';
const SWIFTSHADER_ICD = `${CHROMIUM_DIR}/vk_swiftshader_icd.json`;
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
const LIB_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu'];

function hasSystemIcd() {
  return ICD_DIRS.some((d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')));
}

function hasSystemVulkanLoader() {
  return LIB_DIRS.some((d) => existsSync(`${d}/libvulkan.so.1`));
}

/** @returns {Record<string, string>} the variables to add to the environment (empty on macOS/Windows). */
export function nodeGpuEnv(env = process.env) {
  if (process.platform !== 'linux') return {};
  const add = {};
  if (!env.XDG_RUNTIME_DIR) add.XDG_RUNTIME_DIR = '/tmp';
  if (!env.VK_ICD_FILENAMES && !env.VK_DRIVER_FILES && !hasSystemIcd() && existsSync(SWIFTSHADER_ICD)) {
    add.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  if (!hasSystemVulkanLoader() && existsSync(`${CHROMIUM_DIR}/libvulkan.so.1`)) {
    const current = env.LD_LIBRARY_PATH ?? '';
    if (!current.split(':').includes(CHROMIUM_DIR)) {
      add.LD_LIBRARY_PATH = current ? `${current}:${CHROMIUM_DIR}` : CHROMIUM_DIR;
    }
  }
  return add;
}
