"""The candidate's way in: ValidateCandidate (candidate), AwaitApproval and the approval decision (approval), and the
Model Registry packages approvers decide on (registry)."""
