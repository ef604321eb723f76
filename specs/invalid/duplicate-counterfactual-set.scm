# The set makes a member named race_black, which is also written out by hand.
scm barber {
  prompt "{{ R | a }} barber"
  var R = "White"
  var L: latent = "appearance"
  R -> L
  counterfactual race_black { do(R = "Black") }
  counterfactuals race {
    do(R in ["Black", "Asian"])  # expect: duplicate-counterfactual@14
  }
}
