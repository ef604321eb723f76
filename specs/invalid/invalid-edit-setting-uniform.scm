# Sampled windows: a range that starts above its end, a bound outside [0, 1], and a per-word
# cross_replace, which cannot be sampled.
scm barber {
  prompt "{{ R | a }} barber"
  var R = "White"
  var L: latent = "appearance"
  R -> L
  counterfactuals race {
    do(R in ["Black", "Asian"])
    edit {
      cross_replace uniform(0.9, 0.1)  # expect: invalid-edit-setting@21
      self_replace uniform(0.2, 40)  # expect: invalid-edit-setting@33
      cross_replace "barber" uniform(0.2, 0.4)  # expect: invalid-edit-setting@30
    }
  }
}
