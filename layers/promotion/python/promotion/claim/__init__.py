"""ClaimPromotion: a tuning job's completion becomes one promotion, deduplicated, holding its model's lock (store: the
claims and locks in DynamoDB)."""
