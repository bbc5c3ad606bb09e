"""Code shared by the SageMaker jobs (training, comparison) and by data scientists' notebooks.

Submodules are imported explicitly (``from promotion_ml import evaluation``) so that a job pays only for what
it uses: the training job never imports matplotlib or the statistics.
"""
