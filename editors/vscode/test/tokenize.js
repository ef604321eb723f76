// Tokenize .scm files with the extension's TextMate grammar, as VS Code does (vscode-textmate
// on the Oniguruma regex engine), and print one JSON array: per file, every token with its
// 0-based line, start and end columns (UTF-16), text and scopes.
//
//   node test/tokenize.js FILE...
const fs = require("fs");
const path = require("path");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
const onigLib = oniguruma.loadWASM(wasm).then(() => ({
  createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));
const grammarPath = path.join(__dirname, "..", "syntaxes", "cfspec.tmLanguage.json");
const registry = new vsctm.Registry({
  onigLib,
  loadGrammar: async (scopeName) =>
    scopeName === "source.cfspec"
      ? vsctm.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath)
      : null,
});

registry.loadGrammar("source.cfspec").then((grammar) => {
  const out = [];
  for (const file of process.argv.slice(2)) {
    const lines = fs.readFileSync(file, "utf8").split(/\r?\n/);
    let stack = vsctm.INITIAL;
    const tokens = [];
    lines.forEach((line, number) => {
      const result = grammar.tokenizeLine(line, stack);
      for (const t of result.tokens) {
        const end = Math.min(t.endIndex, line.length);
        if (end > t.startIndex) {
          tokens.push([number, t.startIndex, end, line.slice(t.startIndex, end), t.scopes]);
        }
      }
      stack = result.ruleStack;
    });
    out.push({ file, tokens });
  }
  process.stdout.write(JSON.stringify(out));
});
