/** Bundles `entry` (relative to packages/server) into `outfile` with esbuild; `external` packages stay imports. */
export function bundleSrc(entry: string, outfile: string, external?: string[]): string;
