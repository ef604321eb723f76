# COCO 375763_0: "A very cute flock of sheep in a grassy field."
# -> "A very cute pair of sheep in a grassy field."

scm sheep_flock {
  id "375763_0"
  prompt "{{ C | a | capitalize }} {{ N }} of {{ S }} in a {{ F }}."

  var C: look = "very cute"
  var N: quantity = "flock" "how many sheep there are"
  var S: animal = "sheep"
  var F: place = "grassy field"

  F -> N "Open pasture feeds a whole flock."
  S -> N "Sheep keep together in flocks."
  S -> C "Woolly sheep look cute."
  N -> C "How many there are changes how the group looks."

  counterfactual pair {
    do(N = "pair")
    edit replace { cross_replace 0.8  cross_replace "pair" [0.0, 0.5]  self_replace 0.4 }
  }

  # Same slot, and the new look word is emphasised.
  counterfactual fluffy {
    do(C = "very fluffy")
    edit reweight { cross_replace 0.8  reweight "fluffy" 2.0 }
  }

  # Two words for three, and the article changes with them: "An adorable".
  counterfactual adorable {
    do(C = "adorable")
    edit refine { cross_replace 0.7  self_replace 0.4 }
  }
}
