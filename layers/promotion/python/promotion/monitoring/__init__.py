"""Watching the live release after its promotion: the endpoint's captured requests against the release's training
data (drift), and drift's answer, a new tuning job within each model's rate limits (retraining)."""
