# Two photos for one factual caption: a spec has one factual image.
scm cake {
  image "photos/cake.png"
  image "photos/other.jpg"  # expect: duplicate-setting@3
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}
