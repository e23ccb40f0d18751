// `npm test`: runs every suite in order and ends with one line `N passed, N failed` summing them all.
//   1. unit      tests/unit under Node, no GPU
//   2. gpu       tests/gpu in headless Chromium (Vitest browser mode, WebGPU on SwiftShader without a GPU)
//   3. gpu-node  the same tests/gpu files under Node + Dawn (the `webgpu` package)
//   4. e2e       Playwright against the demo page, with and without WebGPU
// Exits non-zero when any test failed or any suite could not run.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { findBrowser, INSTALL_HINT } from './find-browser.mjs';
import { nodeGpuEnv } from './gpu-env.mjs';

const OUT = 'test-results';
mkdirSync(OUT, { recursive: true });
const env = { ...process.env, ...nodeGpuEnv() };
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

function vitestSuite(project) {
  const file = `${OUT}/${project}.json`;
  return {
    name: project,
    needsBrowser: project === 'gpu',
    file,
    args: ['vitest', 'run', '--project', project, '--reporter=default', '--reporter=json', `--outputFile.json=${file}`],
    count: (report) => ({
      passed: report.numPassedTests,
      failed: report.numFailedTests,
      skipped: report.numPendingTests + report.numTodoTests,
      total: report.numTotalTests,
    }),
  };
}

const suites = [
  vitestSuite('unit'),
  vitestSuite('gpu'),
  vitestSuite('gpu-node'),
  {
    name: 'e2e',
    needsBrowser: true,
    file: `${OUT}/e2e.json`,
    args: ['playwright', 'test', '--reporter=list,json'],
    env: { PLAYWRIGHT_JSON_OUTPUT_NAME: `${OUT}/e2e.json` },
    count: (report) => ({
      passed: report.stats.expected + report.stats.flaky,
      failed: report.stats.unexpected + (report.errors?.length ?? 0),
      skipped: report.stats.skipped,
      total: report.stats.expected + report.stats.flaky + report.stats.unexpected + report.stats.skipped,
    }),
  },
];

const browser = findBrowser();
const totals = { passed: 0, failed: 0, skipped: 0 };
const lines = [];
for (const suite of suites) {
  console.log(`\n=== ${suite.name} ===`);
  if (suite.needsBrowser && !browser) {
    console.error(INSTALL_HINT);
    totals.failed += 1;
    lines.push(`${suite.name}: could not run (no browser)`);
    continue;
  }
  rmSync(suite.file, { force: true });
  const started = Date.now();
  const run = spawnSync(npx, suite.args, { stdio: 'inherit', env: { ...env, ...suite.env } });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  let counts;
  try {
    counts = suite.count(JSON.parse(readFileSync(suite.file, 'utf8')));
  } catch {
    counts = null;
  }
  if (!counts) {
    totals.failed += 1;
    lines.push(`${suite.name}: did not report results (exit ${run.status ?? run.signal}) in ${seconds}s`);
    continue;
  }
  // A runner that exits non-zero with every test green still failed (e.g. an error outside any test).
  if (run.status !== 0 && counts.failed === 0) counts.failed = 1;
  if (counts.total === 0) counts.failed += 1; // a suite that ran nothing is broken, not green
  totals.passed += counts.passed;
  totals.failed += counts.failed;
  totals.skipped += counts.skipped;
  lines.push(`${suite.name}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped in ${seconds}s`);
}

console.log('\n=== summary ===');
for (const line of lines) console.log(line);
const skipped = totals.skipped ? `, ${totals.skipped} skipped` : '';
console.log(`${totals.passed} passed, ${totals.failed} failed${skipped}`);
process.exit(totals.failed > 0 ? 1 : 0);
