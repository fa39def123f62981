"""Data-parallel training of the guide's MNIST model on MPI: the same script on one process or many.

    python examples/distributed_mnist.py                  # one process
    mpiexec -n 2 python examples/distributed_mnist.py     # two processes, one global batch of 64

Both print the same final weights checksum (to float32's summation order) and test accuracy
(about 0.84): the two processes split every global batch of 64 in two, sum their gradients, and
apply the same update. Twenty epochs let BatchNormalization's moving statistics settle. The
model is the Keras RNN guide's (LSTM(64) -> BatchNormalization -> Dense(10), each image read as
a sequence of rows) on the 8x8 digits bundled with rnnkit, so it runs without network access.
Needs `pip install "rnnkit[mpi]"` for mpiexec; without it the script trains on one process.
"""

import numpy as np

import rnnkit as rk

# The one line that makes the script data-parallel under mpiexec (and changes nothing without it).
rk.distribution.set_distribution(rk.distribution.DataParallel())
chief = rk.distribution.distribution().process_id == 0

rk.utils.set_random_seed(0)  # rank 0's initial weights are broadcast to the others at fit
np.random.seed(0)  # rank 0's shuffles are broadcast too
(x_train, y_train), (x_test, y_test) = rk.datasets.digits.load_data()
x_train, x_test = x_train.astype("float32") / 16.0, x_test.astype("float32") / 16.0

model = rk.Sequential(
    [
        rk.Input((8, 8)),
        rk.layers.LSTM(64),
        rk.layers.BatchNormalization(),
        rk.layers.Dense(10),
    ]
)
model.compile(
    loss=rk.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer="adam",
    metrics=["accuracy"],
)
model.fit(x_train, y_train, validation_data=(x_test, y_test), batch_size=64, epochs=20, verbose=2 if chief else 0)
accuracy = model.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
checksum = sum(float(np.sum(np.abs(w), dtype=np.float64)) for w in model.get_weights())
if chief:
    processes = rk.distribution.distribution().num_processes
    print(f"processes: {processes}  test accuracy: {accuracy:.4f}  weights checksum: {checksum:.3f}")
