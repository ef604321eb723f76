# A folder is named where the photo's file belongs.
scm cake {
  image "photos"  # expect: not-an-image@9
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
}
