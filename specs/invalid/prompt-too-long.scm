# The caption is far longer than the 77 tokens the CLIP text encoder reads: the rest is silently
# cut off, in the factual prompt and in the counterfactual rendered from it.
scm market {
  prompt "A {{ W }} in a long red coat and a wide straw hat is standing behind a wooden stall at a busy open air market on a sunny morning, selling bright yellow lemons, green apples, purple plums, fresh bread, small jars of honey, bunches of dried flowers and hand painted ceramic bowls to a crowd of tourists, children and old men who are talking, laughing and taking photographs of the colourful street."  # expect: prompt-too-long@10
  var W = "woman"
  var H: latent = "weather"
  H -> W
  counterfactual man { do(W = "man") }  # expect: prompt-too-long@18
}
