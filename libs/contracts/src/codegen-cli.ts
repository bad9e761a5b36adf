#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateTypes } from './codegen';

const target = join(__dirname, '..', 'src', 'generated', 'types.ts');
writeFileSync(target, generateTypes());
process.stdout.write(`wrote ${target}\n`);
