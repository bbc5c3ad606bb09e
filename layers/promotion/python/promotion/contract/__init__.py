"""The contracts every step, the stack and the operators' tools share: the state document, the model catalog, the
events, the hyperparameter forms, every name and key the product writes, and the job image's metric definitions."""
