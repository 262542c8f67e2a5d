"""The ``fcnn`` command line: a thin layer over the fcnn library.

Importing the package first sets the BLAS threads (:mod:`fcnn.runtime`), before anything
imports NumPy.
"""

from fcnn.runtime import pin_blas_threads, pin_blas_threads_for_serving

pin_blas_threads()
pin_blas_threads_for_serving()
