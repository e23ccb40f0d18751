// Node + Dawn: give this process a `navigator.gpu` from the `webgpu` package, so the GPU test files run
// unchanged in Node and in the browser.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create([]);
const g = globalThis as { navigator?: object };
if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
