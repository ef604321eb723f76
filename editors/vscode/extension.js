// The cfspec extension: the TextMate grammar does the colours; this starts `cfspec lsp` (over
// stdio) for everything else. Set `cfspec.server.command` when cfspec is not on PATH.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("cfspec")
    .get("server.command", ["cfspec", "lsp"]);
  client = new LanguageClient(
    "cfspec",
    "cfspec language server",
    { command, args, transport: TransportKind.stdio },
    { documentSelector: [{ scheme: "file", language: "cfspec" }, { scheme: "untitled", language: "cfspec" }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
