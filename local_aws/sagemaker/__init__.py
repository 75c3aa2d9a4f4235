"""The local SageMaker: control plane (``SageMaker.*`` JSON operations) and runtime InvokeEndpoint."""
