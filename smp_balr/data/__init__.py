"""Step 1: BA files and tables in, the formatted train/test tables out; the demo corpus."""
