# The edge W -> C is listed twice.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  W -> C "said again"  # expect: duplicate-edge@3
  counterfactual man { do(W = "man") }
}
