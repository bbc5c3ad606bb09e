"""IAM for the local runtime: the synthesized policies, AWS's evaluation logic, and the enforcement of both on every
AWS call the product makes locally (see `local.iam.enforcer`)."""
