"""CuPy loading of kernels/*.cu (optional: everything works on the CPU without cupy)."""
