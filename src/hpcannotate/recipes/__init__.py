"""Recipe -> facts: one folder per recipe format (plugin, adapter, sandboxed evaluation)."""
