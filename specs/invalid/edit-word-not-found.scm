# The blend names "spoon", which is in neither prompt.
scm cake {
  prompt "A {{ W }} is cutting a cake with a {{ K }}."
  var W = "woman"
  var K = "knife"
  W -> K
  counterfactual fork {
    do(K = "fork")
    edit refine { blend "knife" -> "spoon" }  # expect: edit-word-not-found@36
  }
}
