# A variable's own question must be answerable yes or no: the VQA scorer asks it of both images
# and reads the probability of "yes".
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W: agent = "woman" ask "What is the woman wearing?"  # expect: ask-not-yes-no@30
  var C: object = "cake" ask "Is there a cake on a plate"  # expect: ask-not-yes-no@30
  W -> C
  counterfactual man { do(W = "man") }
}
