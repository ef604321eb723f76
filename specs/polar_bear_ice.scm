# COCO 42296_0: "a polar bear partially submerged in a body of water"
# -> "a polar bear partially submerged in a body of ice" (neither caption ends in a period).

scm polar_bear {
  id "42296_0"
  prompt "{{ B | a }} {{ S }} in a body of {{ W }}"

  var B: animal = "polar bear"
  var S: state = "partially submerged"
  var W: substance = "water"
  var T: latent = "temperature" "how cold the air is"

  T -> W "Cold enough, the water freezes."
  W -> S "Water is what lets the bear sink in."
  B -> S "The bear swims to hunt and cool off."

  counterfactual ice {
    do(W = "ice")
    edit replace { cross_replace 0.9  self_replace 0.2  blend "water" -> "ice" }
  }

  # Another animal in the same water: one word for two.
  counterfactual walrus {
    do(B = "walrus")
    edit refine { cross_replace 0.8  self_replace 0.3 }
  }
}
