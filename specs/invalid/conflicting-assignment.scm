# The counterfactual gives `W` new words twice.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man {
    do(W = "man")
    do(W = "boy")  # expect: conflicting-assignment@8
  }
}
