scm people {
  prompt "A {{ R }} {{ G }} rides a {{ B }}."

  var R = "white"
  var G = "woman"
  var B = "bicycle"

  R -> G

  counterfactuals race_gender { do(R in ["black", "asian", "white"], G in ["man", "woman"]) }

  counterfactuals vehicles {
    do(B in ["motorbike", "horse", "tandem bicycle", "unicycle", "scooter", "skateboard", "kayak"],
       G = "man")
  }
}
