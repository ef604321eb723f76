# 11 x 11 x 11 = 1331 combinations: more than a set may have (1000).
scm words {
  prompt "{{ A }} {{ B }} {{ C }}"
  var A = "w0"
  var B = "w0"
  var C = "w0"
  var L: latent = "look"
  A -> L
  B -> L
  C -> L
  counterfactuals grid {  # expect: set-too-large@19
    do(A in ["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "w10"],
       B in ["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "w10"],
       C in ["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "w10"])
  }
}
