"""The SageMaker jobs' own library (training, comparison, serving): data, evaluation, artifacts, statistics and the
container layout. Everything here ships in the job image (jobs/Dockerfile); the data scientists' notebook toolkit
builds on it from outside the image (``toolkit/promotion_toolkit``).

Submodules are imported explicitly (``from promotion_ml import evaluation``) so that a job pays only for what
it uses: the training job never imports matplotlib or the statistics.
"""
