"""The language server (`cfspec lsp`): `analysis.py` answers questions about a document with
offsets and the linter's records; `server.py` speaks LSP over stdio with pygls (the `lsp`
extra). Nothing on the lint path imports this package."""
