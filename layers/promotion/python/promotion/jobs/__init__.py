"""The SageMaker work a promotion waits for: CheckDataQuality's processing job (data_quality), TriggerPipeline's
training job (training), CompareWithChampion's processing job (comparison), and the callback waits SageMaker's
state-change events end (callbacks, run by ResumeWaitingStep)."""
