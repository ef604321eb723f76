# The prompt is given twice, and one edit sets self_replace twice.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  prompt "A {{ W }} is slicing a {{ C }}."  # expect: duplicate-setting@3
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man {
    do(W = "man")
    edit refine { self_replace 0.4  self_replace 0.6 }  # expect: duplicate-setting@37
  }
}
