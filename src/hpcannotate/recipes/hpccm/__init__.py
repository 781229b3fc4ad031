"""HPCCM recipes (Python): evaluated in a sandboxed worker, rendered by hpccm itself."""
