# Punctuation right next to the changed word, and a literal prompt without placeholders.
scm punctuation_cases {
  id "golden_punct"
  prompt "A plate with a burger, fries and a drink."
  var F: food = "burger"
  var S: food = "fries"
  F -> S
  counterfactual salad { do(F = "salad") edit { blend "burger." -> "salad," } }
  counterfactual pizza {
    do(F = "pizza")
    prompt "A plate with a pizza, fries and a drink."
  }
}
