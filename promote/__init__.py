"""`promote`: the data scientists' and operators' command line (approve, reject, roll back, status, history)."""
