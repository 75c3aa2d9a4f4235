"""The deployable units of the platform: one cdk.Stage per environment, holding the platform
stack and one stack per model project."""
