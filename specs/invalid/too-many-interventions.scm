# The counterfactual changes both the person and the cake, which are independent of each other:
# the pair of images no longer isolates one cause.
scm cake {
  prompt "A {{ W }} is {{ A }} a {{ C }}."
  var W = "woman"
  var A = "cutting"
  var C = "cake"
  W -> A
  C -> A
  counterfactual man_pie { do(W = "man", C = "pie") }  # expect: too-many-interventions@42
}
