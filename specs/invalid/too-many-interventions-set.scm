# A set may change its listed variables (R and G) together, but the fixed `S` is a third
# independent intervention: one too many for each member.
scm barber {
  prompt "{{ R | a }} {{ G }} barber with {{ S }}"
  var R = "White"
  var G = "male"
  var S = "scissors"
  var L: latent = "appearance"
  R -> L
  G -> L
  S -> L
  counterfactuals race_gender {
    do(R in ["Black", "Asian"], G in ["male", "female"],
       S = "a razor")  # expect: too-many-interventions@12
  }
}
