"""The ``fcnn`` command line: a thin layer over the fcnn library.

Importing the package first sets the BLAS threads (:mod:`cli.threads`), before anything
imports NumPy.
"""

from cli.threads import pin_blas_threads, pin_blas_threads_for_serving

pin_blas_threads()
pin_blas_threads_for_serving()
