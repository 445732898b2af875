// Relative module specifiers in emitted declaration files. tsc's rewriteRelativeImportExtensions
// rewrites `./x.ts` to `./x.js` in JavaScript output only (microsoft/TypeScript#61037), so the
// .d.ts files keep `./x.ts`, which no published package contains.
import ts from 'typescript';

export interface Specifier {
  /** Offsets of the specifier text, without its quotes. */
  start: number;
  end: number;
  text: string;
}

const TS_EXTENSION = /(?<!\.d)\.([mc]?)ts$/;

/** Every relative specifier in a declaration file that names a TypeScript source (`./x.ts`, `../y.mts`). */
export function tsSpecifiers(fileName: string, text: string): Specifier[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: Specifier[] = [];
  const add = (node: ts.Node | undefined) => {
    if (!node || !ts.isStringLiteral(node)) return;
    const spec = node.text;
    if ((spec.startsWith('./') || spec.startsWith('../')) && TS_EXTENSION.test(spec)) {
      found.push({ start: node.getStart(sf) + 1, end: node.end - 1, text: spec });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    else if (ts.isModuleDeclaration(node)) add(node.name);
    else if (ts.isExternalModuleReference(node)) add(node.expression);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The declaration file with `./x.ts` specifiers turned into the `./x.js` that the build emits. */
export function rewriteTsSpecifiers(fileName: string, text: string): string {
  let out = text;
  // Back to front, so earlier offsets stay valid.
  for (const s of tsSpecifiers(fileName, text).reverse()) {
    out = out.slice(0, s.start) + s.text.replace(TS_EXTENSION, '.$1js') + out.slice(s.end);
  }
  return out;
}
