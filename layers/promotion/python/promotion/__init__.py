"""Domain package of the promotion product: the decisions behind every state of the promotion state machine.

Shipped as a Lambda layer and imported by the handlers, the SageMaker jobs, the local runtime and the tests.
Everything here works over injected boto3 clients so tests can pass moto clients.
"""
