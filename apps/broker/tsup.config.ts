import { readFileSync } from 'node:fs';
import { packageConfig } from '../../tsup.shared';

const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export default packageConfig({
  entry: ['src/index.ts', 'src/cli.ts'],
  dts: { entry: 'src/index.ts' },
  define: { __ZBUS_VERSION__: JSON.stringify(version) },
});
