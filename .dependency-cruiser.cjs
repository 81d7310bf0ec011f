// The layers of src/, lowest first. A module may import from its own layer or a lower one, never a higher one.
// `npm run check:layers` (part of `npm test`) fails on any rule below; there are no exceptions. When two job
// folders need the same code, it moves down a layer (src/media, src/util, ...), it is not imported sideways.
/** @type {{ name: string, path: string }[]} */
const layers = [
  { name: 'base', path: '^src/(errors|types)\\.ts$' },
  { name: 'util', path: '^src/util/' },
  { name: 'stage', path: '^src/stage/' },
  { name: 'io', path: '^src/(media|shards|models|sinks|features)/' },
  { name: 'infer', path: '^src/infer/' },
  { name: 'job folders', path: '^src/(extract|clips|faces|segments|semdedup|report|dedup)/' },
  { name: 'run', path: '^src/run/' },
  { name: 'scale', path: '^src/scale/' },
  { name: 'jobs', path: '^src/jobs/' },
  { name: 'cli', path: '^src/cli/' },
  // The package's entry points: the root export and the subpath exports (clipstream/faces, ...).
  { name: 'index', path: '^src/(index\\.ts$|entries/)' },
];
const jobFolders = '(extract|clips|faces|segments|semdedup|report|dedup)';

const upward = layers.slice(0, -1).map((layer, i) => ({
  name: `no-up-from-${layer.name.replace(/ /g, '-')}`,
  comment: `The ${layer.name} layer may not import from a layer above it (${layers
    .slice(i + 1)
    .map((l) => l.name)
    .join(', ')}).`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: layers.slice(i + 1).map((l) => l.path) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-circular',
      comment: 'No import circle, however long.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-job-to-job',
      comment: 'A job folder never imports another job folder: what two jobs share moves down a layer.',
      severity: 'error',
      from: { path: `^src/${jobFolders}/` },
      to: { path: `^src/${jobFolders}/`, pathNot: '^src/$1/' },
    },
    {
      name: 'no-layer',
      comment: 'Every module under src/ belongs to a declared layer (add a new folder to the list above).',
      severity: 'error',
      from: { path: '^src/', pathNot: layers.map((l) => l.path) },
      to: {},
    },
    {
      name: 'no-import-of-unlayered',
      comment: 'Every module under src/ belongs to a declared layer (add a new folder to the list above).',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/', pathNot: layers.map((l) => l.path) },
    },
    {
      name: 'no-src-to-outside',
      comment: 'The library never imports tests, scripts, benchmarks or examples.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|scripts|bench|examples|fixtures)/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that resolves to nothing is a broken import.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.cjs', '.mjs', '.json', '.d.ts'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
