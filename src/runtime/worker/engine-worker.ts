/**
 * The entry of the Worker engine's module Worker: exposes one `Engine` (engine.ts) to the page over comlink.
 * The page starts it as `new Worker(new URL('./engine-worker.ts', import.meta.url), { type: 'module' })`.
 */
import * as Comlink from 'comlink';
import { Engine } from './engine.js';

Comlink.expose(new Engine());
