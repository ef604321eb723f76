scm tpl {
  id "tpl-1"
  prompt "A {{W}} and {{ D }} by the {{ P }}."

  var W: agent = "woman"
  var D = "dog" "a pet"
  var P: place = "lake"

  W -> D
  D -> P "walks to"

  counterfactual no_dog { do(D = none) }

  counterfactual city {
    do(P = "city")
    edit refine {}
  }
}
