// Packs every publishable package once for the whole suite; the tarballs go away with it.
import { rmSync } from 'node:fs';
import type { TestProject } from 'vitest/node';
import { type PackedPackage, packAll } from './workspace.js';

declare module 'vitest' {
  export interface ProvidedContext {
    packs: PackedPackage[];
  }
}

export default function setup(project: TestProject): () => void {
  const { dir, packs } = packAll();
  project.provide('packs', packs);
  return () => rmSync(dir, { recursive: true, force: true });
}
