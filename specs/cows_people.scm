# COCO 60823_0: "Some cows that are wandering around a lot of pigeons."
# -> "Some people that are wandering around a lot of pigeons."

scm cows_pigeons {
  id "60823_0"
  prompt "Some {{ C }} that are {{ A }} around {{ N }} {{ P }}."

  var C: agent = "cows" "the animals walking about"
  var A: action = "wandering"
  var N: quantity = "a lot of"
  var P: animal = "pigeons"
  var Y: latent = "farmyard" "the place, with feed spilled on the ground"

  Y -> C "A farmyard is where cows are kept."
  Y -> N "Spilled feed draws many pigeons."
  C -> A "Cows roam slowly as they graze."
  P -> A "The birds on the ground are what they walk around."

  counterfactual people {
    do(C = "people")
    edit replace { cross_replace [0.0, 0.7]  self_replace 0.3 }
  }

  # Children do not wander among pigeons, they chase them: the action downstream changes too.
  counterfactual children {
    do(C = "children")
    set A = "running"
    edit replace {
      cross_replace 0.6
      self_replace 0.4
      blend "cows" "wandering" -> "children" "running"
    }
  }

  # Fewer birds: two words for three, so refine.
  counterfactual few_pigeons {
    do(N = "a few")
    edit refine { cross_replace 0.8  self_replace 0.2 }
  }
}
