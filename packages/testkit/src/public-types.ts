// A check that a package's public surface is complete (issue 19): every type that a public member of an exported
// declaration names (a parameter, a return type, a property, a base class) is itself exported from the package's
// entry, so users can name it. Runs the TypeScript checker over the built `.d.ts`.
import ts from 'typescript';

/** Whether `file` holds this repository's own declarations (a workspace package's build, not node_modules). */
function ours(file: string): boolean {
  return file.includes('/packages/') && !file.includes('/node_modules/');
}

/**
 * Names of types that the public declarations of the module `entry` (a `.d.ts` path) use but that the module does
 * not export, each with one place that uses it (`Name (used by Owner)`). Types of the TypeScript and DOM libs and
 * of third-party packages are left out; private and protected class members are not public.
 */
export function unexportedTypes(entry: string): string[] {
  const program = ts.createProgram([entry], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry);
  const moduleSymbol = source && checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`${entry} is not a module`);
  const resolve = (s: ts.Symbol): ts.Symbol =>
    s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
  const exports = checker.getExportsOfModule(moduleSymbol);
  const exported = new Set(exports.map(resolve));
  // A class the package re-exports as a subclass of the same name (the core `MqClient` behind the Node one).
  const exportedNames = new Set(exports.map((s) => s.name));
  const missing = new Map<string, string>();
  const visited = new Set<ts.Symbol>();

  const isPrivate = (node: ts.Node): boolean => {
    if (ts.isPrivateIdentifier((node as { name?: ts.Node }).name ?? node)) return true;
    const mods = ts.canHaveModifiers(node) ? ts.getModifiers(node) : undefined;
    return (
      mods?.some(
        (m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword,
      ) ?? false
    );
  };

  /** `named`: the use needs the type by name (not a base class, whose members are checked all the same). */
  const visitSymbol = (symbol: ts.Symbol, owner: string, named: boolean): void => {
    const s = resolve(symbol);
    const decls = s.declarations ?? [];
    if (decls.length === 0 || !decls.some((d) => ours(d.getSourceFile().fileName))) return;
    if (decls.every((d) => ts.isTypeParameterDeclaration(d))) return;
    if (named && !exported.has(s) && !exportedNames.has(s.name) && !missing.has(s.name)) {
      missing.set(s.name, owner);
    }
    if (visited.has(s)) return;
    visited.add(s);
    for (const d of decls) walk(d, s.name);
  };

  const walk = (node: ts.Node, owner: string): void => {
    if (isPrivate(node) && !ts.isSourceFile(node)) return;
    // The body of a declared function or method is not part of its type.
    if (ts.isBlock(node)) return;
    let name: ts.Node | undefined;
    let named = true;
    if (ts.isTypeReferenceNode(node)) name = node.typeName;
    else if (ts.isTypeQueryNode(node)) name = node.exprName;
    else if (ts.isExpressionWithTypeArguments(node)) {
      name = node.expression;
      named = !ts.isClassLike(node.parent.parent);
    }
    if (name !== undefined) {
      const s = checker.getSymbolAtLocation(ts.isQualifiedName(name) ? name.right : name);
      if (s !== undefined) visitSymbol(s, owner, named);
    }
    ts.forEachChild(node, (child) => walk(child, owner));
  };

  for (const s of exported) {
    visited.add(s);
    for (const d of s.declarations ?? []) {
      if (ours(d.getSourceFile().fileName)) walk(d, s.name);
    }
  }
  return [...missing].map(([name, owner]) => `${name} (used by ${owner})`).sort();
}
