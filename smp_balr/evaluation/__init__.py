"""Step 4: test scores against chance (permutation p-value, speaker bootstrap), effect sizes, presence beyond another label, and the table's verdict."""
