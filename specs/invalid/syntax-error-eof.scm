# The spec's closing `}` is missing: the file ends inside the block. The error points at the end
# of the file, where no comment can follow, hence an expect-line comment.
# expect-line 9: syntax-error@39
scm cake {
  prompt "A {{ W }} is cutting a {{ C }}."
  var W = "woman"
  var C = "cake"
  W -> C
  counterfactual man { do(W = "man") }
