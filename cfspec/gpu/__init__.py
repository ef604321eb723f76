"""The two stages that run models: `generate/` (Prompt-to-Prompt image pairs on diffusers) and
`evaluate/` (CLIP, latent and background metrics, KID/FID).

The only place in cfspec whose modules import torch, diffusers or transformers at module level
(tests/test_layout.py holds every other module to that); nothing below this layer imports it,
so linting, compiling and importing never load a GPU library. The CLI registers the commands
of these stages without importing them: their modules load when the command runs."""

from cfspec.workspace.usercache import private_torch_caches

# Before any module below imports torch: its compile caches go to the user's own folder, never
# to the shared temp dir (usercache.py says why).
private_torch_caches()
