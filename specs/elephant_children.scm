# COCO 183437_3: "a large elephant that has people sitting on top."
# -> "a large elephant that has children sitting on top."

scm elephant_riders {
  id "183437_3"
  prompt "{{ S | a }} {{ E }} that has {{ P }} {{ A }} on top."

  var S: size = "large"
  var E: animal = "elephant"
  var P: agent = "people" "the riders"
  var A: action = "sitting"
  var T: latent = "elephant ride" "a ride offered to visitors"

  T -> P "A ride for visitors brings the riders."
  T -> E "The ride needs a trained elephant."
  S -> P "A large elephant can carry several riders."
  E -> A "Its broad back gives them a place to sit."
  P -> A "The riders climb up and sit."

  counterfactual children {
    do(P = "children")
    edit replace { cross_replace 0.8  self_replace 0.4 }
  }

  # A small elephant carries one child, not a group: the riders downstream change.
  counterfactual small {
    do(S = "small")
    set P = "a child"
    edit refine { cross_replace [0.0, 0.8]  self_replace 0.2 }
  }
}
