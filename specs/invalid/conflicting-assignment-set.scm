# A set lists `R` twice: the second list is left out, and says so.
scm barber {
  prompt "{{ R | a }} barber"
  var R = "White"
  var L: latent = "appearance"
  R -> L
  counterfactuals race {
    do(R in ["Black", "Asian"],
       R in ["Indian"])  # expect: conflicting-assignment@8
  }
}
