# The intervened variable `T` is latent (not in the prompt), so the counterfactual renders the
# factual prompt again.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  var T: latent = "hunger"
  T -> W
  W -> C
  counterfactual full { do(T = "satiety") }  # expect: no-op-intervention@18
}
