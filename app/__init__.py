"""LSTM music and name generator (Keras 3 / TensorFlow).

Layout: `app.core` is the token-sequence core shared by both domains (vocabulary, one-hot, Keras model, numpy
stepper, sampling, model folder, n-gram baselines); `app.names` and `app.music` add only a codec and a writer.
"""

import os

# TensorFlow prints several INFO lines at import (oneDNN, CPU features); users see them as noise.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
