# "Middle Eastern" and "Middle-Eastern" are different words with the same slug, so two
# members would both be named race_middle_eastern.
scm barber {
  prompt "{{ R | a }} barber"
  var R = "White"
  var L: latent = "appearance"
  R -> L
  counterfactuals race {
    do(R in ["Middle Eastern", "Middle-Eastern"])  # expect: set-name-collision@32
  }
}
