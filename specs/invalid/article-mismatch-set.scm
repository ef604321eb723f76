# "a" is written in the prompt, so members whose race starts with a vowel read "a Indian",
# "a Asian": each is reported at its own value in the list.
scm barber {
  prompt "a {{ R }} barber"
  var R = "White"
  var L: latent = "appearance"
  R -> L
  counterfactuals race {
    do(R in ["Black", "Indian", "Asian"])  # expect: article-mismatch@23(warning) article-mismatch@33(warning)
  }
}
