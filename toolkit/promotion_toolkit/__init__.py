"""The data scientists' toolkit: experiment tracking (MLflow), feature engineering, algorithm comparison, local
hyperparameter search and the launcher of the SageMaker tuning job that starts a promotion.

It serves the notebooks (``notebooks/``) and a data scientist's own shell, and is not shipped: neither the
SageMaker job image (``jobs/``, whose library is ``promotion_ml``) nor a Lambda layer contains it, so what the
jobs run is only what they import. It builds on both: the jobs' library (``promotion_ml.data``,
``promotion_ml.evaluation``), so a notebook's numbers are the jobs' numbers, and the domain package
(``promotion.contract``, ``layers/promotion/python``), so its catalog, tags and metric definitions are the
promotion's. Put ``toolkit``, ``jobs`` and ``layers/promotion/python`` on the path (``notebooks/notebook_setup.py``
and the tests' configuration do).

Submodules are imported explicitly (``from promotion_toolkit import tracking``): MLflow, scikit-learn and the
``sagemaker`` SDK load only for the module that needs them.
"""
