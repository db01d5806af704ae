"""Token-sequence core shared by names and music.

Modules that import TensorFlow/Keras (`model`, `train`) are imported lazily by callers so that generation from a
saved model folder (numpy only) starts in a fraction of a second.
"""
