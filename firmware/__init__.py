"""The camera's daemon and the ``obscura`` command line.

NumPy's OpenBLAS starts a thread per core when NumPy is imported, and they spin: about
85 ms of CPU for every ``obscura`` process, and every ``obscura batch`` worker, on a
2-core machine, with nothing to do (the heavy loops are numba kernels; BLAS multiplies
only 3 x 3 colour matrices and small fits). So the package asks for one BLAS thread
before anything imports NumPy, unless the user set ``OPENBLAS_NUM_THREADS`` themselves.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
