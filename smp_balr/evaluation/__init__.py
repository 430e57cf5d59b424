"""Step 4: test scores against chance, effect sizes, presence beyond a label, the verdict.

Scores come with a permutation p-value and a speaker bootstrap; presence is also tested
beyond another, associated label; the table's verdict is corrected across its labels.
"""
