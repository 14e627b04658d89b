// Placeholder until the Coordinator module lands.
