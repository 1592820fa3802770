// Builds the two ES modules that dashboard/scatter.py hands to st.components.v2:
//   build/scatter.js   the map (regl-scatterplot, regl, kdbush, our code), minified
//   build/channel.js   the hover/click request channel
//   build/scatter.css  the map's styles
// Run: npm ci && npm run build   (Node 18+). The output is committed, so users need no Node.
import { copyFile, mkdir } from 'node:fs/promises';
import { build } from 'esbuild';

await mkdir('build', { recursive: true });
const common = {
  bundle: true,
  format: 'esm',
  minify: true,
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  legalComments: 'eof',
  logLevel: 'info',
  // a first line of its own: Streamlit takes one-line js for a file path, not inline code
  banner: { js: '// Embedding Explorer map component; source: dashboard/components/scatter/src\n' },
};
await build({ ...common, entryPoints: ['src/index.js'], outfile: 'build/scatter.js' });
await build({ ...common, entryPoints: ['src/channel.js'], outfile: 'build/channel.js' });
await copyFile('src/scatter.css', 'build/scatter.css');
