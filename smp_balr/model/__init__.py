"""Step 3: the classifier (BAClassifier), its folds, sampling, tree search, training and saved artefacts."""
