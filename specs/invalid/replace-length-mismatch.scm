# A forced replace edit, but "knife" (one word) becomes "pair of scissors" (three).
scm cake {
  prompt "A {{ W }} is cutting a cake with a {{ K }}."
  var W = "woman"
  var K = "knife"
  W -> K
  counterfactual scissors {
    do(K = "pair of scissors")
    edit replace { cross_replace 0.8 }  # expect: replace-length-mismatch@10
  }
}
