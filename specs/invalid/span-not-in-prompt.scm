# The words of `K` ("knife") are not in the literal caption, and the counterfactual's own prompt
# does not contain its do() value "man".
scm cake {
  prompt "A woman is cutting a cake."
  var W = "woman"
  var C = "cake"
  var K = "knife"  # expect: span-not-in-prompt@11
  W -> C
  K -> C
  counterfactual man {
    do(W = "man")  # expect: span-not-in-prompt@12
    prompt "A boy is cutting a cake."
  }
}
