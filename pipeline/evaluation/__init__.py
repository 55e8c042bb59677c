"""The pipeline measured against hand-made gold: the scorer (`score.py`, kept byte for byte as the
project's annotators wrote it) and the evaluation sets it is run on (`sets.py`)."""
