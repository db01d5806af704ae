"""LSTM music and name generator (Keras 3 / TensorFlow).

Layout: `app.core` is the token-sequence core shared by both domains (vocabulary, one-hot, Keras model, numpy
stepper, sampling, model folder, n-gram baselines); `app.names` and `app.music` add only a codec and a writer.
"""

# TensorFlow's start-up lines are silenced in one place: app/core/tfquiet.py (imported before keras).

__version__ = "0.1.0"
