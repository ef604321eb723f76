# cross_replace is given in steps (40) instead of a fraction, and the self_replace window is
# reversed.
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man {
    do(W = "man")
    edit replace { cross_replace 40  self_replace [0.6, 0.2] }  # expect: invalid-edit-setting@34 invalid-edit-setting@51
  }
}
