// Placeholder until the Kernels module lands.
