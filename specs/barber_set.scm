# SocialCounterfactuals (Howard et al., CVPR 2024): one caption and every combination of two
# intervened attributes. 6 races x 2 genders is 12 combinations; the factual one ("a White male
# barber") is no counterfactual, so the set makes 11 pairs, each named race_gender_<race>_<gender>.

scm barber {
  id "socialcf_barber"
  prompt "{{ R | a }} {{ G }} barber"

  var R: race = "White"
  var G: gender = "male"
  var L: latent = "appearance" "how the person in the picture looks"

  R -> L "Race shapes how the barber looks: skin tone, hair, facial features."
  G -> L "Gender shapes how the barber looks."

  # The race and gender grid: `| a` gives "an Indian", "an Asian", "a Middle Eastern".
  # Each pair draws its cross-attention window [0, x] with x ~ U(0.6, 0.9), per seed.
  counterfactuals race_gender {
    do(R in ["White", "Black", "Indian", "Asian", "Middle Eastern", "Latino"],
       G in ["male", "female"])
    edit { cross_replace uniform(0.6, 0.9)  self_replace 0.4 }
  }
}
