# A set's `in` list with no value: the set has no combination at all.
scm barber {
  prompt "{{ R | a }} {{ G }} barber"
  var R = "White"
  var G = "male"
  var L: latent = "appearance"
  R -> L
  G -> L
  counterfactuals race_gender {
    do(R in ["Black", "Asian"],
       G in [])  # expect: empty-value-list@8
  }
}
