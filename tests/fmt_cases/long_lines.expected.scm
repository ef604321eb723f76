scm long {
  prompt "A {{ W }} with a {{ H }} cuts a {{ C }} at a party in a crowded kitchen full of people."

  var W = "woman" "the person who cuts; a long description that runs past the width on purpose"
  var H = "hat"
  var C = "cake"

  W -> C
  H -> W

  counterfactual man {
    do(W = "man")
    edit replace {
      cross_replace [0.0, 0.8]
      self_replace 0.4
      blend "woman" "cake"
      threshold 0.3
      reweight "man" 2.0
    }
  }
}
