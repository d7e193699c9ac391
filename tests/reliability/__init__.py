"""Fault injection and hostile inputs (issue 18): every one a clear error, nothing silently wrong, nothing lost."""
