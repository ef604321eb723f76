# COCO 119452_0: "a spotty banana sitting on top of an orange and some other fruit"
# -> "a spotty apple sitting on top of an orange and some other fruit" (no final periods).

scm fruit_pile {
  id "119452_0"
  prompt "{{ D | a }} {{ B }} {{ A }} on top of {{ O | a }} and some other fruit"

  var D: look = "spotty" "the state of the peel"
  var B: fruit = "banana"
  var A: position = "sitting"
  var O: fruit = "orange" "the fruit underneath"
  var T: latent = "days" "how long the fruit has been lying out"

  T -> D "Over the days the peel ripens."
  B -> D "Ripe banana peels turn spotty."
  B -> A "The banana rests on the pile."
  O -> A "The orange holds it up."

  counterfactual apple {
    do(B = "apple")
    edit replace { cross_replace 0.8  self_replace 0.4  blend "banana" -> "apple" }
  }

  # An apple does not get spotty as it ripens: the look downstream of the fruit changes.
  counterfactual shiny_apple {
    do(B = "apple")
    set D = "shiny"
    edit replace { cross_replace 0.7  self_replace [0.0, 0.4] }
  }

  # The fruit underneath changes, and so does its article. The edit type is left to the compiler.
  counterfactual pear {
    do(O = "pear")
    edit { cross_replace 0.8  self_replace 0.4 }
  }
}
