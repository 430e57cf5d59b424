"""Step 3: the classifier (BAClassifier), folds, sampling, tree search, training, artefacts."""
