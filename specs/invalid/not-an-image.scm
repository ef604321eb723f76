# The file exists but is text, not a photo (its first bytes are no image signature).
scm cake {
  image "photos/captions.jpg"  # expect: not-an-image@9
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}
