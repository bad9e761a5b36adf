#!/usr/bin/env node
// Brings the whole local pipeline up (every service built so far) and says where everything listens.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const up = spawnSync(process.execPath, [join(root, 'deploy/local/dist/cli.js'), 'up'], { stdio: 'inherit', cwd: root });
if (up.status !== 0) process.exit(up.status ?? 1);
console.log('\nThe stack runs in the background. Stop it with: ./sluice stack down');
