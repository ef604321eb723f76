"""The two stages that run models: `generate/` (Prompt-to-Prompt image pairs on diffusers) and
`evaluate/` (CLIP, latent and background metrics, KID/FID).

The only place in cfspec whose modules import torch, diffusers or transformers at module level
(tests/test_layout.py holds every other module to that); nothing below this layer imports it,
so linting, compiling and importing never load a GPU library. The CLI registers the commands
of these stages without importing them: their modules load when the command runs. `models` and
`device` are standard library only: the CLI reads the defaults and checks names and devices.

Every module that imports torch is in `generate/` or `evaluate/`, whose `__init__` points
torch's compile caches at the user's private folder first (cfspec.workspace.usercache says
why). Not here: this package's light modules load for every command, and `cfspec lint` has no
business creating a cache folder.
"""
