# A counterfactual caption written differently from the factual one where it says the same
# (`They 'll` for `They'll`, a doubled space): a caption artefact, not a change of content.
scm parking {
  prompt "They'll tow your car if you don't pay for parking."

  var P = "parking"
  var T = "tow"

  P -> T

  counterfactual gas {
    do(P = "gas")
    prompt "They 'll tow your car if  you don't pay for gas."  # expect: caption-artefact@13
  }
}
