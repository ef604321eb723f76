# The prompt was saved as Latin-1, not UTF-8: its e-grave is one byte, 0xE8.
scm dessert {
  prompt "A {{ W }} is eating a crème brûlée."
  var W = "woman"
  var D: latent = "hunger"
  D -> W
  counterfactual man { do(W = "man") }
}
