# The template writes "runs" after {{ D }}: once D becomes "dogs" the verb should be "run".
scm park {
  prompt "The {{ D }} runs across the {{ P }}."
  var D = "dog"
  var P = "park"
  D -> P
  counterfactual dogs { do(D = "dogs") }  # expect: agreement-mismatch@32
}
