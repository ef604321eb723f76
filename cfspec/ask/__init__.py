"""`cfspec ask`: captions -> an LLM -> checked .scm specs, with grammar-constrained decoding,
a repair loop that sends the diagnostics back, a content-hash cache and resume.

- `captions.py` reads captions (a text file, caption-pair JSON Lines, the command line);
- `backends.py` talks to an OpenAI-compatible server or runs a transformers model in process,
  masking its logits with llguidance (`decode.py`);
- `cache.py` keeps every answer under a hash of what was asked;
- `runner.py` is the loop: instruction, answer, import and lint, repair, write;
- its command line is cfspec/cli/ask.py.

Nothing below cfspec.ask imports it; torch and transformers load only for the in-process
backend.
"""
