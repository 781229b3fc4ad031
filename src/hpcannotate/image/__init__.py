"""Image -> facts: what an image says (inspect, read, probe); layers only when a check needs them."""
