/**
 * The services give the memory glibc holds freed back to the system (shared/posix.ts,
 * releaseFreedMemory): on this Debian (glibc) the call must bind and run, not quietly do
 * nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { releaseFreedMemory } from '../src/shared/posix.js';

void describe('releaseFreedMemory', () => {
  void it('calls glibc malloc_trim (bound through koffi), again and again', () => {
    for (let i = 0; i < 3; i++) assert.equal(releaseFreedMemory(), true);
  });
});
