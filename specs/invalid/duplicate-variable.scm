# `W` is declared twice.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  var W = "girl"  # expect: duplicate-variable@7
  W -> C
  counterfactual man { do(W = "man") }
}
