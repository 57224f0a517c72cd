// harness.mjs: what every browser test shares (imported, not run by
// tests/run, which runs only test_*.mjs): the PASS/FAIL/SKIP lines
// tests/run counts, check() around one named check, assert, sleep, a
// polling waitFor, and a free local port. failureCount() decides the exit
// status: process.exit(failureCount() ? 1 : 0).
import net from 'node:net';

let failures = 0;

export function pass(name, note) { console.log(`PASS: ${name}${note ? ` (${note})` : ''}`); }
export function fail(name, why) {
  failures++;
  console.log(`FAIL: ${name}: ${String(why).replace(/\s+/g, ' ').slice(0, 500)}`);
}
export function skip(name, why) { console.log(`SKIP: ${name}: ${why}`); }
export function failureCount() { return failures; }

// Runs fn as the check `name`: PASS (with fn's string result as a note) or
// FAIL with the error's message; true when it passed.
export async function check(name, fn) {
  try {
    const note = await fn();
    pass(name, typeof note === 'string' ? note : '');
    return true;
  } catch (e) {
    fail(name, e && e.message ? e.message : e);
    return false;
  }
}

export function assert(cond, msg) { if (!cond) throw new Error(msg); }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns something truthy (errors count as not yet);
// throws naming `what` and the last error after timeoutMs.
export async function waitFor(what, fn, timeoutMs = 20000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(everyMs);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}
