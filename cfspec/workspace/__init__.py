"""Everything about the output folder OUT: file names, ids and limits, the records each stage
writes and reads back, atomic writes, the symlink policy, the manifest store and provenance.

Torch-free: the stages use it, the linter never needs it."""
