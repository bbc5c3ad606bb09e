"""The A/B rollout on the endpoint: DeployChallenger, ShiftTraffic, EvaluateStage, PromoteChallenger and RetireChampion
(steps), the statistical gate (gate), stage weights and sticky assignment (weights), and the pinned model artifact
(artifacts)."""
