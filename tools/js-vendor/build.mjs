// Rebuild the vendored verifier: `cd tools/js-vendor && npm ci && npm run build`. The built files
// are committed; this folder's package-lock.json pins what they are built from.
import { build } from 'esbuild';

const common = { entryPoints: ['drand-verify.js'], bundle: true, minify: true, target: 'es2020', legalComments: 'inline' };
await build({ ...common, format: 'esm', outfile: '../../static/js/vendor/drand-verify.js' });
await build({ ...common, format: 'cjs', banner: { js: '// @ts-nocheck' }, outfile: '../../miniprogram/utils/vendor/drand-verify.js' });
