# The spec declares no counterfactual, so it compiles to no image pairs.
scm cake {  # expect: no-counterfactuals@5
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
}
