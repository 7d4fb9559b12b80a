"""The Kedro pipelines, one folder each (data, train, evaluate, predict, diagnose): nodes.py + pipeline.py, thin."""
