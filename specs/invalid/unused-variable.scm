# `T` (the table) takes part in no edge and no intervention.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }} on a {{ T }}."
  var W = "woman"
  var C = "cake"
  var T = "table"  # expect: unused-variable@7
  W -> C
  counterfactual man { do(W = "man") }
}
