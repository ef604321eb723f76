# "Asian" is listed twice (the second in another case): it adds no counterfactual.
scm barber {
  prompt "{{ R | a }} {{ G }} barber"
  var R = "White"
  var G = "male"
  var L: latent = "appearance"
  R -> L
  G -> L
  counterfactuals race {
    do(R in ["Black", "Asian", "asian"])  # expect: duplicate-set-value@32(warning)
  }
}
