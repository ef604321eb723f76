# The literal counterfactual prompt also changes the cake into a pie, which the intervention
# on the woman does not explain; and `set C` changes a variable that is not downstream of W.
scm cake {
  prompt "A woman is cutting a cake with a knife."
  var W = "woman"
  var C = "cake"
  var K = "knife"
  K -> C
  K -> W
  counterfactual man {
    do(W = "man")
    prompt "A man is cutting a pie with a knife."  # expect: non-minimal-change@32
  }
  counterfactual baker {
    do(W = "baker")
    set C = "bread"  # expect: non-minimal-change@9
  }
}
