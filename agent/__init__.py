"""segcheck agent: the pure core, the adapters, the lab and the runtime."""
