/**
 * A quiet CLI: `npx clipstream` in the checkout prints no npm warning before clipstream's own
 * output. (An `.npmrc` with `onnxruntime-node-install-cuda` once made every npx print "npm warn
 * Unknown project config"; npm 11's allowScripts keeps onnxruntime-node's CUDA download off.)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/run-cli.js';

describe('npx clipstream in the checkout', () => {
  it('prints the version and no `npm warn` line', () => {
    const r = spawnSync(process.platform === 'win32' ? 'npx.cmd' : 'npx', ['clipstream', '--version'], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toContain((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
    expect(r.stderr.split('\n').filter((l) => /^npm warn/i.test(l))).toEqual([]);
  });
});
