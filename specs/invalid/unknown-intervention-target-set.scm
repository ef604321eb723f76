# A set intervenes on `Q`, which the model does not have (reported once, not per member).
scm barber {
  prompt "{{ R | a }} barber"
  var R = "White"
  var L: latent = "appearance"
  R -> L
  counterfactuals race {
    do(R in ["Black", "Asian"],
       Q in ["x", "y"])  # expect: unknown-intervention-target@8
  }
}
