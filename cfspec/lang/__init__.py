"""The .scm language: AST, parser, a spec's meaning (model), prompts and their words, CLIP tokens,
configuration and the sandboxed prompt templates. Imports only `cfspec.diagnostics`."""
