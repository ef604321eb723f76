# The photo is not where the spec says: no such file beside this spec.
scm cake {
  image "photos/000000158956.jpg"  # expect: image-not-found@9
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}
