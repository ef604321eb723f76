# The template writes "a {{ K }}": once K becomes "apple" the article should be "an".
scm cake {
  prompt "A {{ W }} is holding a {{ K }}."
  var W = "woman"
  var K = "knife"
  W -> K
  counterfactual apple { do(K = "apple") }  # expect: article-mismatch@33
}
