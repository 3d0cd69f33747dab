// Adds lockfile entries for Rollup's native packages of other platforms.
//
// npm 11's `npm ci` insists that every optional dependency named by a locked package has a
// lockfile entry. This machine's registry mirror only carries the Linux builds of
// @rollup/rollup-*, so `npm install` cannot write the others and `npm ci` then refuses the
// lockfile. The entries added here carry name, version and platform only: npm skips them on
// non-matching platforms, and on a matching one (e.g. macOS) fetches them from its registry.
// Run after changing dependencies: `npm install && node dev/complete-lockfile.mjs`.
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const packages = lock.packages;

function platformOf(name) {
  const [, os, cpu, abi] = /^@rollup\/rollup-([a-z0-9]+)-([a-z0-9]+)(?:-([a-z0-9]+))?$/.exec(name) ?? [];
  if (!os) return null;
  const entry = { os: [os], cpu: [cpu] };
  if (os === 'linux') entry.libc = [abi?.startsWith('musl') ? 'musl' : 'glibc'];
  return entry;
}

let added = 0;
for (const [path, info] of Object.entries(packages)) {
  if (!path.endsWith('node_modules/rollup') || !info.optionalDependencies) continue;
  for (const [name, version] of Object.entries(info.optionalDependencies)) {
    const key = `node_modules/${name}`;
    const platform = platformOf(name);
    if (packages[key] || !platform) continue;
    packages[key] = { version, ...platform, dev: info.dev, license: 'MIT', optional: true };
    added += 1;
  }
}
lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} platform entries`);
