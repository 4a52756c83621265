// Finds test deadlines that do not grow with the machine's load: a vitest test or hook (`it`, `test`,
// `beforeAll`, ...) given a number literal as its timeout. vitest.shared.ts scales the default timeouts by the
// load, and an explicit literal replaces that scaled default with a fixed budget, so a test that passes on a
// quiet machine times out on a busy one (DEVELOPERS.md, "Tests"). Wrap it in `scaled()` from @zbus/testkit.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { workspaceDirs } from './check.js';

export interface FixedDeadline {
  /** Path from the checked root, with `/`. */
  file: string;
  line: number;
  call: string;
}

const TAKES_TIMEOUT = new Set(['it', 'test', 'describe', 'beforeAll', 'afterAll', 'beforeEach', 'afterEach']);
const TEST_FILE = /\.test\.(ts|mts|js|mjs)$/;

/** `it`, `it.skipIf(x)`, `describe.each(rows)`, `test.concurrent`: the vitest function a call ends up in. */
function vitestName(callee: ts.Expression): string | undefined {
  let e = callee;
  for (;;) {
    if (ts.isIdentifier(e)) return TAKES_TIMEOUT.has(e.text) ? e.text : undefined;
    if (ts.isPropertyAccessExpression(e)) e = e.expression;
    else if (ts.isCallExpression(e)) e = e.expression;
    else return undefined;
  }
}

function isNumber(e: ts.Expression): boolean {
  return ts.isNumericLiteral(e) || (ts.isPrefixUnaryExpression(e) && ts.isNumericLiteral(e.operand));
}

/** The fixed deadlines of one test file's source. */
export function fixedDeadlines(file: string, source: string): FixedDeadline[] {
  const sf = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const found: FixedDeadline[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isCallExpression(node) && node.arguments.length >= 2) {
      const name = vitestName(node.expression);
      const last = node.arguments[node.arguments.length - 1]!;
      const fn = node.arguments.some((a) => ts.isArrowFunction(a) || ts.isFunctionExpression(a));
      if (name !== undefined && fn && isNumber(last)) {
        const { line } = sf.getLineAndCharacterOfPosition(last.getStart(sf));
        found.push({ file, line: line + 1, call: name });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

function* testFiles(dir: string): Generator<string> {
  for (const entry of readdirSync(dir)) {
    if (entry === 'node_modules' || entry === 'dist' || entry === 'fixtures') continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) yield* testFiles(path);
    else if (TEST_FILE.test(entry)) yield path;
  }
}

/** Every fixed deadline in the test/ folders of the workspace packages under `root`. */
export function checkDeadlines(root: string): FixedDeadline[] {
  const found: FixedDeadline[] = [];
  for (const dir of workspaceDirs(root)) {
    const tests = join(root, dir, 'test');
    if (!statSync(tests, { throwIfNoEntry: false })?.isDirectory()) continue;
    for (const path of testFiles(tests)) {
      const file = relative(root, path).split('\\').join('/');
      found.push(...fixedDeadlines(file, readFileSync(path, 'utf8')));
    }
  }
  return found;
}
