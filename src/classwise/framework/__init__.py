"""The Kedro and MLflow glue: hooks, catalog datasets, tracking, the run summary, project paths, interrupts, the parameter-block registry."""
