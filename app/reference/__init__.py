"""The seed documents' small numpy RNNs, kept as reference implementations (numpy only, no TensorFlow).

Each module is one system, with its recurrence and gradient written in its docstring in the document's notation:

- `lstm`       LSTM forward pass (course notes, seed 002): the oracle our Keras LSTMs are tested against.
- `minchar`    min-char-rnn (seed 003): vanilla RNN, Adagrad, clipped gradients, sequence chunks; a text baseline.
- `dinos_rnn`  the course's dinosaur-name RNN (seed 002): the "course baseline" row of bench/names.py.
- `addition`   8-bit binary addition with a recurrent hidden layer and BPTT (seed 000).
- `count_ones` the linear RNN that counts ones, trained with Rprop (seed 004).

`python -m app reference {dinos,minchar,addition,count}` runs each as a small demo (`app.reference.cli`).
"""
